"""`ctx.storage.sql` of a SQLite-backed Durable Object, and the connection under it.

- `sql.exec(query, *bindings)` is synchronous and returns a cursor (`toArray()`,
  `one()`, iteration, `raw()`, `columnNames`, `rowsRead`, `rowsWritten`) with
  rows as `JsDict`, as the SDK's wrapper gives them on the edge.
- More than 100 bound parameters is refused, as on Cloudflare
  (developers.cloudflare.com/durable-objects/platform/limits: "Maximum bound
  parameters per query: 100").
- Numbers follow the edge: a binding beyond 2^53 is refused (it would be a JS BigInt)
  and an INTEGER beyond it reads back through a double; SQL transaction statements are
  refused as workerd's SqlStorageRegulator does.
- The event's transaction starts at its first statement that may write (`in_event`,
  set by the storage's output gate in storage.py).
"""
from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Iterator

from workers import JsDict

from src.localedge.sqlsplit import split_statements

MAX_BOUND_PARAMETERS = 100
# On the edge a Python int crosses into JS as a Number only up to 2^53 - 1 (beyond, Pyodide
# makes a BigInt, which SqlStorage.exec cannot bind), and an INTEGER comes back as a double
# (cloudflare/workerd src/workerd/api/sql.h BindingValue, sql.c++ "coerce to a double").
MAX_SAFE_INTEGER = 2**53 - 1
# SqlStorageRegulator::allowTransactions (workerd src/workerd/api/sql.c++) refuses these.
_TRANSACTION_WORDS = ("BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE")
_TRANSACTION_REFUSED = (
    "To execute a transaction, please use the state.storage.transaction() or "
    "state.storage.transactionSync() APIs instead of the SQL BEGIN TRANSACTION or SAVEPOINT "
    "statements. The JavaScript API is safer because it will automatically roll back on "
    "exceptions, and because it interacts correctly with Durable Objects' automatic atomic "
    "write coalescing.")


def _check_bindings(bindings: tuple) -> None:
    for i, value in enumerate(bindings, 1):
        if type(value) is int and not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise TypeError(f"SQL binding {i} ({value}) is beyond 2^53: on Cloudflare it becomes a JS "
                            "BigInt, which ctx.storage.sql cannot bind; store it as text")


def _as_js_numbers(rows: list[tuple]) -> list[tuple]:
    """INTEGERs beyond 2^53 as the edge returns them: through a double (lossy)."""
    def unsafe(v: Any) -> bool:
        return type(v) is int and not -MAX_SAFE_INTEGER <= v <= MAX_SAFE_INTEGER
    if not any(unsafe(v) for r in rows for v in r):
        return rows
    return [tuple(int(float(v)) if unsafe(v) else v for v in r) for r in rows]


class SqlError(Exception):
    """A failed `sql.exec` (on the edge: a JS Error with SQLite's message)."""


class SqlCursor:
    """The result of `sql.exec`: rows already read, because the statement ran synchronously."""

    __slots__ = ("_cols", "_rows", "rowsRead", "rowsWritten", "_pos")

    def __init__(self, cols: list[str], rows: list[tuple], rows_read: int, rows_written: int) -> None:
        self._cols = cols
        self._rows = rows
        self.rowsRead = rows_read
        self.rowsWritten = rows_written
        self._pos = 0

    @property
    def columnNames(self) -> list[str]:
        return list(self._cols)

    def _take(self) -> list[tuple]:
        rows = self._rows[self._pos:]
        self._pos = len(self._rows)
        return rows

    def toArray(self) -> list[JsDict]:
        cols = self._cols
        return [JsDict(zip(cols, r)) for r in self._take()]

    def one(self) -> JsDict:
        rows = self._take()
        if len(rows) != 1:
            got = "no results" if not rows else "multiple results"
            raise SqlError(f"Expected exactly one result from SQL query, but got {got}.")
        return JsDict(zip(self._cols, rows[0]))

    def raw(self) -> Iterator[list]:
        for r in self._take():
            yield list(r)

    def next(self) -> JsDict:
        """JS iterator protocol: {"done": bool, "value": row}."""
        if self._pos >= len(self._rows):
            return JsDict(done=True)
        row = self._rows[self._pos]
        self._pos += 1
        return JsDict(done=False, value=JsDict(zip(self._cols, row)))

    def __iter__(self) -> Iterator[JsDict]:
        cols = self._cols
        for r in self._take():
            yield JsDict(zip(cols, r))


def open_database(path: Path, fresh_unsynced: bool = False) -> sqlite3.Connection:
    """A connection we drive by hand (isolation_level=None): WAL, synchronous=NORMAL.

    Creating a WAL database costs ~25 ms of fsyncs on this kind of disk (the
    journal-mode switch and the first WAL frames). With `fresh_unsynced` a
    *new* file starts with synchronous=OFF and the caller switches to NORMAL
    after its first commit (`StorageSync`): every commit still reaches the OS
    before a result is delivered, so a SIGKILL loses nothing; only a power
    loss in a brand-new object's first event could.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    new = fresh_unsynced and not path.exists()
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, cached_statements=512)
    if new:
        conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA journal_mode=WAL")
    if not new:
        conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


class SqlStorage:
    """`ctx.storage.sql`."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.in_event = False

    @property
    def databaseSize(self) -> int:
        c = self._conn
        return c.execute("PRAGMA page_count").fetchone()[0] * c.execute("PRAGMA page_size").fetchone()[0]

    def exec(self, query: str, *bindings: Any) -> SqlCursor:
        if len(bindings) > MAX_BOUND_PARAMETERS:
            raise SqlError(f"too many SQL variables: {len(bindings)} bound parameters, "
                           f"Durable Object SQL allows at most {MAX_BOUND_PARAMETERS}")
        if bindings:
            _check_bindings(bindings)
        head = query.lstrip()[:9].upper()
        if head.startswith(_TRANSACTION_WORDS) and head.split(None, 1)[0].rstrip(";") in _TRANSACTION_WORDS:
            raise SqlError(_TRANSACTION_REFUSED)
        conn = self._conn
        if self.in_event and not conn.in_transaction and query.lstrip()[:6].upper() != "SELECT":
            # the event's transaction starts at its first statement that may write; a plain
            # SELECT needs none (this object's events are serialized, nobody else writes the file)
            conn.execute("BEGIN")
        before = conn.total_changes
        try:
            try:
                cur = conn.execute(query, bindings)
            except sqlite3.ProgrammingError as exc:
                if "one statement at a time" not in str(exc):
                    raise
                cur = self._exec_script(query, bindings)
            desc = cur.description
            rows = _as_js_numbers(cur.fetchall()) if desc is not None else []
        except sqlite3.Error as exc:
            raise SqlError(f"{exc}: SQLITE_ERROR") from None
        written = conn.total_changes - before
        cols = [d[0] for d in desc] if desc is not None else []
        return SqlCursor(cols, rows, len(rows) + written, written)

    def _exec_script(self, query: str, bindings: tuple) -> sqlite3.Cursor:
        statements = split_statements(query)
        if bindings:
            raise SqlError("bindings are not supported with several statements in one exec()")
        cur = None
        for statement in statements:
            cur = self._conn.execute(statement)
        if cur is None:
            cur = self._conn.execute("SELECT 1 WHERE 0")
        return cur
