"""In-process stand-ins for a Durable Object's ctx/env, used before (and besides) the
local runtime: real SQLite, alarms recorded instead of fired, RPC through JSON strings.
"""
from __future__ import annotations

import sqlite3
from types import SimpleNamespace
from typing import Any


class FakeCursor:
    def __init__(self, cur: sqlite3.Cursor) -> None:
        self._rows = [dict(r) for r in cur.fetchall()] if cur.description else []
        self.rowsWritten = max(cur.rowcount, 0) if not cur.description else 0

    def toArray(self) -> list[dict]:
        return list(self._rows)


class FakeSql:
    def __init__(self, db: sqlite3.Connection, log: list[str]) -> None:
        self.db, self.log = db, log

    def exec(self, query: str, *args: Any) -> FakeCursor:
        self.log.append(" ".join(query.split()))
        return FakeCursor(self.db.execute(query, args))


class FakeStorage:
    def __init__(self) -> None:
        self.db = sqlite3.connect(":memory:", isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.log: list[str] = []
        self.sql = FakeSql(self.db, self.log)
        self.alarm: int | None = None

    async def getAlarm(self) -> int | None:
        return self.alarm

    async def setAlarm(self, at_ms: int) -> None:
        self.alarm = int(at_ms)

    async def deleteAlarm(self) -> None:
        self.alarm = None

    async def deleteAll(self) -> None:
        """Every table dropped and the alarm deleted (compatibility date 2026-02-24 and later)."""
        for (name,) in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
            self.db.execute(f'DROP TABLE "{name}"')
        self.alarm = None
        self.wiped = getattr(self, "wiped", 0) + 1

    def tables(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]

    def writes(self) -> list[str]:
        return [q for q in self.log if q.split()[0].upper() in ("INSERT", "UPDATE", "DELETE")]


class FakeNamespace:
    """getByName -> one live instance per name, like a DO namespace (without isolation)."""

    def __init__(self, cls: type, env: Any) -> None:
        self.cls, self.env, self.objects, self.down = cls, env, {}, False

    def getByName(self, name: str) -> Any:
        if name not in self.objects:
            ctx = SimpleNamespace(storage=FakeStorage(), id=SimpleNamespace(name=name))
            self.objects[name] = self.cls(ctx, self.env)
        if self.down:
            return _Down()
        return self.objects[name]


class _Down:
    def __getattr__(self, name: str) -> Any:
        async def fail(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("Durable Object unreachable")
        return fail


def make_bucket(name: str = "client-a", storage: FakeStorage | None = None, **vars: Any):
    from durable_objects.bucket import ClientBucket
    from durable_objects.outbox import SnapshotOutbox

    env = SimpleNamespace(**{k: str(v) for k, v in vars.items()})
    env.OUTBOX = FakeNamespace(SnapshotOutbox, env)
    ctx = SimpleNamespace(storage=storage or FakeStorage(), id=SimpleNamespace(name=name))
    return ClientBucket(ctx, env)
