"""`ctx.storage` of a SQLite-backed Durable Object, on one SQLite file per object.

- SQL (`ctx.storage.sql`) is `sql_storage.SqlStorage` on the object's connection.
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

from src.localedge.durable.closer import close_later
from src.localedge.durable.sql_storage import SqlStorage, open_database


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
