"""A D1 binding on sqlite3 for in-process flush tests (prepare/bind/all/run/batch),
counting batch calls the way Workers counts subrequests; `down` makes every call fail."""
from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

MIGRATION = Path(__file__).resolve().parents[2] / "migrations" / "0001_usage.sql"
MIGRATIONS = sorted((Path(__file__).resolve().parents[2] / "migrations").glob("*.sql"))


class _Stmt:
    def __init__(self, db: "FakeD1", sql: str, args: tuple = ()) -> None:
        self.db, self.sql, self.args = db, sql, args

    def bind(self, *args: Any) -> "_Stmt":
        if len(args) > 100:
            raise RuntimeError(f"too many SQL variables ({len(args)} > 100)")
        return _Stmt(self.db, self.sql, args)

    def _exec(self) -> dict:
        cur = self.db.conn.execute(self.sql, self.args)
        rows = [dict(r) for r in cur.fetchall()] if cur.description else []
        return {"results": rows, "success": True, "meta": {"changes": cur.rowcount}}

    async def all(self) -> dict:
        self.db.calls += 1
        self.db.check()
        return self._exec()

    async def run(self) -> dict:
        return await self.all()


class FakeD1:
    def __init__(self, path: str = ":memory:") -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        for migration in MIGRATIONS:        # in name order, as wrangler d1 migrations apply
            self.conn.executescript(migration.read_text())
        self.calls = 0
        self.down = False

    def check(self) -> None:
        if self.down:
            raise RuntimeError("D1_ERROR: database unavailable")

    def prepare(self, sql: str) -> _Stmt:
        return _Stmt(self, sql)

    async def batch(self, stmts: list[_Stmt]) -> list[dict]:
        self.calls += 1
        self.check()
        self.conn.execute("BEGIN")
        try:
            out = [s._exec() for s in stmts]
        except Exception:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")
        return out

    def totals(self) -> dict[str, tuple[int, int, int, int]]:
        return {r["rule"]: (r["allowed"], r["admitted"], r["denied"], r["shadow_denied"])
                for r in self.conn.execute("SELECT rule, SUM(allowed) allowed, SUM(admitted) admitted, "
                                           "SUM(denied) denied, SUM(shadow_denied) shadow_denied "
                                           "FROM usage GROUP BY rule")}
