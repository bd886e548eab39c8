"""`ctx.storage` of a SQLite-backed Durable Object, on one SQLite file per object.

- `sql.exec(query, *bindings)` is synchronous and returns a cursor (`toArray()`,
  `one()`, iteration, `raw()`, `columnNames`, `rowsRead`, `rowsWritten`) with
  rows as `JsDict`, as the SDK's wrapper gives them on the edge.
- More than 100 bound parameters is refused, as on Cloudflare
  (developers.cloudflare.com/durable-objects/platform/limits: "Maximum bound
  parameters per query: 100").
- Output gate: the runtime opens a transaction at the first statement of an
  event and commits it before the event's result (or exception) is delivered
  (`end_event`). The file is in WAL mode with synchronous=NORMAL: a commit is
  in the OS before the caller sees the result, so SIGKILL loses nothing
  delivered (only power loss could).
- KV (`get/put/delete/list`) lives in the `_cf_KV` table, like Cloudflare's
  SQLite-backed objects; values are JSON. Alarms are delegated to the
  runtime-level alarm scheduler so they survive a restart.
"""
from __future__ import annotations

import json
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator

from workers import JsDict

from src.localedge.durable.closer import close_later
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


class DurableObjectStorage:
    """`ctx.storage`: SQL, KV, alarms, transactions, for one object."""

    def __init__(self, path: Path, alarms: Any, alarm_key: tuple[str, str], name: str | None) -> None:
        self.path = path
        self._unsynced = not path.exists()
        self._conn = open_database(path, fresh_unsynced=True)
        self.sql = SqlStorage(self._conn)
        self._alarms = alarms
        self._alarm_key = alarm_key
        self._name = name
        self._kv_ready = False
        self.closed = False

    # ------------------------------------------------------------ output gate (runtime)
    def begin_event(self) -> None:
        self.sql.in_event = True

    def end_event(self) -> None:
        """Commit the event's writes; the runtime calls it before delivering the result."""
        self.sql.in_event = False
        if not self.closed and self._conn.in_transaction:
            self._conn.execute("COMMIT")
            if self._unsynced:  # the new file exists now: normal durability from here on
                self._conn.execute("PRAGMA synchronous=NORMAL")
                self._unsynced = False

    def close(self, fast: bool = False) -> None:
        """Commit, then let the closer thread close the file (see closer.py)."""
        if self.closed:
            return
        self.end_event()
        self.closed = True
        close_later(self._conn, fast)

    # ------------------------------------------------------------ alarms
    async def setAlarm(self, scheduled_time: Any, options: Any = None) -> None:
        if hasattr(scheduled_time, "timestamp"):
            ms = int(scheduled_time.timestamp() * 1000)
        elif isinstance(scheduled_time, (int, float)) and not isinstance(scheduled_time, bool):
            ms = int(scheduled_time)
        else:
            raise TypeError(f"setAlarm() expects epoch milliseconds or a datetime, got {type(scheduled_time).__name__}")
        self._alarms.set(self._alarm_key, self._name, ms)

    async def getAlarm(self, options: Any = None) -> int | None:
        return self._alarms.get(self._alarm_key)

    async def deleteAlarm(self, options: Any = None) -> None:
        self._alarms.delete(self._alarm_key)

    # ------------------------------------------------------------ key-value API
    def _kv(self) -> sqlite3.Connection:
        conn = self._conn
        if self.sql.in_event and not conn.in_transaction:
            conn.execute("BEGIN")
        if not self._kv_ready:
            conn.execute("CREATE TABLE IF NOT EXISTS _cf_KV (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            self._kv_ready = True
        return conn

    async def get(self, key: Any, options: Any = None) -> Any:
        conn = self._kv()
        if isinstance(key, list):
            out = {}
            for k in key:
                row = conn.execute("SELECT value FROM _cf_KV WHERE key = ?", (str(k),)).fetchone()
                if row is not None:
                    out[str(k)] = json.loads(row[0])
            return out
        row = conn.execute("SELECT value FROM _cf_KV WHERE key = ?", (str(key),)).fetchone()
        return None if row is None else json.loads(row[0])

    async def put(self, key: Any, value: Any = None, options: Any = None) -> None:
        conn = self._kv()
        entries = key.items() if isinstance(key, dict) else [(key, value)]
        for k, v in entries:
            conn.execute("INSERT INTO _cf_KV (key, value) VALUES (?, ?) "
                         "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (str(k), json.dumps(v)))
        if not self.sql.in_event and conn.in_transaction:
            conn.execute("COMMIT")

    async def delete(self, key: Any, options: Any = None) -> Any:
        conn = self._kv()
        keys = key if isinstance(key, list) else [key]
        n = 0
        for k in keys:
            n += conn.execute("DELETE FROM _cf_KV WHERE key = ?", (str(k),)).rowcount
        return n if isinstance(key, list) else n > 0

    async def list(self, options: Any = None) -> dict:
        opts = dict(options or {})
        conn = self._kv()
        query, args = "SELECT key, value FROM _cf_KV", []
        if opts.get("prefix"):
            query += " WHERE substr(key, 1, ?) = ?"
            args += [len(opts["prefix"]), opts["prefix"]]
        query += " ORDER BY key" + (" DESC" if opts.get("reverse") else "")
        if opts.get("limit"):
            query += " LIMIT ?"
            args.append(int(opts["limit"]))
        return {k: json.loads(v) for k, v in conn.execute(query, args)}

    async def deleteAll(self, options: Any = None) -> None:
        conn = self._kv()
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' AND name != '_cf_KV'")]
        for t in tables:
            conn.execute(f'DROP TABLE IF EXISTS "{t}"')
        conn.execute("DELETE FROM _cf_KV")

    # ------------------------------------------------------------ transactions
    @contextmanager
    def _savepoint(self, name: str) -> Iterator[None]:
        """Writes inside roll back if the block raises (nested in the event's transaction)."""
        conn = self._conn
        if self.sql.in_event and not conn.in_transaction:
            conn.execute("BEGIN")
        conn.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            conn.execute(f"ROLLBACK TO {name}")
            conn.execute(f"RELEASE {name}")
            raise
        conn.execute(f"RELEASE {name}")

    def transactionSync(self, fn: Callable[[], Any]) -> Any:
        """Run `fn` atomically: its writes roll back if it raises."""
        with self._savepoint("localedge_txn"):
            return fn()

    async def transaction(self, fn: Callable[[Any], Awaitable[Any]]) -> Any:
        with self._savepoint("localedge_atxn"):
            return await fn(self)

    async def sync(self) -> None:
        """Writes are already committed at the end of each event."""
