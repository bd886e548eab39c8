"""D1 on SQLite: result shapes, atomic batch, counters."""
from __future__ import annotations

import aiohttp
import pytest

from tests.runtime.conftest import edge, run


def test_batch_is_atomic(state):
    async def body():
        async with edge(state) as e, aiohttp.ClientSession() as s:
            async with s.get(f"{e.url}/d1batch") as r:
                assert await r.json() == {"ok": True, "changes": [1, 1], "count": 2}
            async with s.get(f"{e.url}/d1batch?fail=1") as r:
                data = await r.json()
            # the third statement failed: the two inserts before it were rolled back
            assert data["ok"] is False and "NOT NULL constraint failed" in data["error"]
            assert data["count"] == 2
    run(body())


def test_statement_results_are_shaped_like_d1(state):
    async def body():
        async with edge(state) as e:
            db = e.env.DB
            await db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, flag INTEGER);\n"
                          "CREATE INDEX t_name ON t (name);")
            res = await db.prepare("INSERT INTO t (name, flag) VALUES (?, ?)").bind("a", True).run()
            assert res.success is True and res["results"] == []
            assert res.meta.changes == 1 and res.meta.last_row_id == 1 and res.meta.rows_written == 1
            await db.prepare("INSERT INTO t (name, flag) VALUES (?, ?)").bind("b", None).run()
            rows = (await db.prepare("SELECT name, flag FROM t ORDER BY id").all())["results"]
            assert rows == [{"name": "a", "flag": 1}, {"name": "b", "flag": None}]
            assert rows[0].name == "a"
            assert await db.prepare("SELECT name FROM t WHERE id = ?").bind(2).first("name") == "b"
            assert await db.prepare("SELECT name FROM t WHERE id = 99").first() is None
            assert await db.prepare("SELECT id, name FROM t ORDER BY id").raw() == [[1, "a"], [2, "b"]]
            assert await db.prepare("SELECT id FROM t").raw({"columnNames": True}) == [["id"], [1], [2]]
            with pytest.raises(Exception, match="D1_COLUMN_NOTFOUND"):
                await db.prepare("SELECT name FROM t").first("nope")
            with pytest.raises(TypeError, match="D1_TYPE_ERROR"):
                db.prepare("SELECT ?").bind({"a": 1})
            with pytest.raises(Exception, match="no such table"):
                await db.prepare("SELECT * FROM missing").all()
            assert db.subrequests == 10 and db.queries >= 9
    run(body())


def test_migrations_dir_is_applied_once_and_recorded(state):
    async def body():
        async with edge(state) as e:
            db = e.d1("DB")
            assert db.rows("SELECT body FROM notes") == [{"body": "first; with a semicolon"}]
            assert [r["name"] for r in db.rows("SELECT name FROM d1_migrations")] == ["0001_notes.sql"]
        async with edge(state) as e:  # a restart applies nothing twice
            assert len(e.d1("DB").rows("SELECT body FROM notes")) == 1
    run(body())
