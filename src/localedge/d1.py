"""D1 on a local SQLite file (<state>/d1/<binding>.sqlite), with D1's result shapes.

`prepare(sql).bind(*values)` then `await stmt.run()/.all()/.first(col)/.raw()`;
`await db.batch([...])` runs the statements in one transaction (all or
nothing, as D1 documents: "Batched statements are SQL transactions. If a
statement in the sequence fails, then an error is returned for that specific
statement, and it aborts or rolls back the entire sequence." —
developers.cloudflare.com/d1/worker-api/d1-database/#batch); `await db.exec(sql)`.
Results are `JsDict`s shaped like D1's JSON: `{"results", "success", "meta"}`.
`queries` and `subrequests` count what the Worker asked, for benchmarks.
"""
from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from workers import JsDict

from src.localedge.durable.sql_storage import open_database
from src.localedge.sqlsplit import split_statements


class D1Error(Exception):
    """A failed D1 call (on the edge: a JS Error whose message starts with D1_ERROR)."""


_ALLOWED = (str, int, float, bytes, type(None))


def _check_value(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)  # D1 stores booleans as 1/0
    if isinstance(value, _ALLOWED):
        return value
    raise TypeError(f"D1_TYPE_ERROR: Type '{type(value).__name__}' not supported for value '{value!r}'")


class D1PreparedStatement:
    __slots__ = ("_db", "sql", "params")

    def __init__(self, db: "D1Database", sql: str, params: tuple = ()) -> None:
        self._db = db
        self.sql = sql
        self.params = params

    def bind(self, *values: Any) -> "D1PreparedStatement":
        return D1PreparedStatement(self._db, self.sql, tuple(_check_value(v) for v in values))

    async def run(self) -> JsDict:
        self._db.subrequests += 1
        return self._db._execute(self)

    async def all(self) -> JsDict:
        self._db.subrequests += 1
        return self._db._execute(self)

    async def first(self, column: str | None = None) -> Any:
        self._db.subrequests += 1
        result = self._db._execute(self)
        rows = result["results"]
        if not rows:
            return None
        if column is None:
            return rows[0]
        if column not in rows[0]:
            raise D1Error(f"D1_COLUMN_NOTFOUND: Column not found ({column})")
        return rows[0][column]

    async def raw(self, options: Any = None) -> list[list]:
        self._db.subrequests += 1
        cols, rows, _ = self._db._rows(self)
        out = [list(r) for r in rows]
        want_names = bool(options and (options.get("columnNames") if isinstance(options, dict)
                                       else getattr(options, "columnNames", False)))
        return [cols] + out if want_names else out


class D1Database:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = open_database(path)
        self.queries = 0       # statements executed
        self.subrequests = 0   # binding calls (run/all/first/raw/batch/exec)

    def prepare(self, query: str) -> D1PreparedStatement:
        if not isinstance(query, str) or not query.strip():
            raise TypeError("D1_ERROR: prepare() needs a non-empty SQL string")
        return D1PreparedStatement(self, query)

    def _rows(self, stmt: D1PreparedStatement) -> tuple[list[str], list[tuple], int]:
        conn = self._conn
        before = conn.total_changes
        self.queries += 1
        try:
            cur = conn.execute(stmt.sql, stmt.params)
            rows = cur.fetchall() if cur.description is not None else []
        except sqlite3.Error as exc:
            raise D1Error(f"D1_ERROR: {exc}: SQLITE_ERROR") from None
        cols = [d[0] for d in cur.description] if cur.description is not None else []
        return cols, rows, conn.total_changes - before

    def _execute(self, stmt: D1PreparedStatement) -> JsDict:
        started = time.perf_counter()
        cols, rows, changes = self._rows(stmt)
        return self._result(cols, rows, changes, started)

    def _result(self, cols: list[str], rows: list[tuple], changes: int, started: float) -> JsDict:
        return JsDict(
            results=[JsDict(zip(cols, r)) for r in rows],
            success=True,
            meta=JsDict(
                served_by="localedge",
                duration=round((time.perf_counter() - started) * 1000, 3),
                changes=changes,
                last_row_id=self._conn.execute("SELECT last_insert_rowid()").fetchone()[0] if changes else 0,
                changed_db=changes > 0,
                size_after=self.path.stat().st_size if self.path.exists() else 0,
                rows_read=len(rows) + changes,
                rows_written=changes,
            ),
        )

    async def batch(self, statements: list[D1PreparedStatement]) -> list[JsDict]:
        """All statements in one transaction: every result, or an error and no change at all."""
        self.subrequests += 1
        if not isinstance(statements, list) or not all(isinstance(s, D1PreparedStatement) for s in statements):
            raise TypeError("D1_ERROR: batch() expects a list of prepared statements")
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        results = []
        try:
            for stmt in statements:
                started = time.perf_counter()
                cols, rows, changes = self._rows(stmt)
                results.append(self._result(cols, rows, changes, started))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return results

    async def exec(self, query: str) -> JsDict:
        """Run one or more statements without bindings (D1's `exec`): `{count, duration}`."""
        self.subrequests += 1
        started = time.perf_counter()
        statements = split_statements(query)
        for statement in statements:
            self.queries += 1
            try:
                self._conn.execute(statement)
            except sqlite3.Error as exc:
                raise D1Error(f"D1_EXEC_ERROR: Error in line {statements.index(statement) + 1}: "
                              f"{statement}: {exc}: SQLITE_ERROR") from None
        return JsDict(count=len(statements), duration=round((time.perf_counter() - started) * 1000, 3))

    def apply_migrations(self, directory: Path) -> list[str]:
        """Apply the `*.sql` files of `directory` not yet recorded, in name order, each in one
        transaction, recording them in `d1_migrations` as `wrangler d1 migrations apply --local`
        does (docs/architecture.md). Returns the names applied."""
        conn = self._conn
        conn.execute("CREATE TABLE IF NOT EXISTS d1_migrations (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                     "name TEXT UNIQUE, applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL)")
        done = {r[0] for r in conn.execute("SELECT name FROM d1_migrations")}
        applied = []
        for path in sorted(directory.glob("*.sql")):
            if path.name in done:
                continue
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in split_statements(path.read_text(encoding="utf-8")):
                    conn.execute(statement)
                conn.execute("INSERT INTO d1_migrations (name) VALUES (?)", (path.name,))
            except sqlite3.Error as exc:
                conn.execute("ROLLBACK")
                raise D1Error(f"D1 migration {path} failed: {exc}") from None
            conn.execute("COMMIT")
            applied.append(path.name)
        return applied

    def rows(self, query: str, *params: Any) -> list[dict]:
        """Read rows in-process (tests, benchmarks, reconcile tooling)."""
        cur = self._conn.execute(query, params)
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r)) for r in cur.fetchall()]

    def close(self) -> None:
        self._conn.close()
