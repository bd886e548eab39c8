"""The single adapter between Durable Object storage and plain Python values.

On Cloudflare `ctx.storage.sql.exec()` returns a (wrapped) JS cursor whose
`toArray()` yields JS objects; on the local runtime it is already Python.
Everything here is duck-typed (`to_py`, `toArray`) so CPython runs it as is.
(D1 results are decoded by src/tollgate/usage_table.py, the usage table's owner.)

On Cloudflare the SDK wraps `ctx.storage` in a `_BindingWrapper` that runs
every argument and result of every call through its RPC converters
(`python_to_rpc` / `python_from_rpc`, workers-runtime-sdk 1.9.5 rpc.py). For
SQLite, which is local and synchronous, that conversion was most of a
decision's CPU on Pyodide (measured by tests/conformance), so `Sql` calls the
raw `SqlStorage.exec` under the wrapper (`_binding`) and converts rows itself:
primitives cross to JS as they are, None must be sent as JS null (Pyodide
would otherwise pass `undefined`), and null comes back as `jsnull`.
"""
from __future__ import annotations

from typing import Any

try:  # Pyodide only: the one platform value this adapter needs
    from pyodide.ffi import jsnull as _JS_NULL
except ImportError:  # CPython and the local runtime: SQL NULL is None
    _JS_NULL = None


def _py(value: Any) -> Any:
    to_py = getattr(value, "to_py", None)
    return to_py() if callable(to_py) else value


def _scalar(value: Any) -> Any:
    if value is _JS_NULL:
        return None
    # JS numbers arrive as float when they crossed a JS boundary as doubles.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _row(row: Any) -> dict[str, Any]:
    row = _py(row)
    return {str(k): _scalar(v) for k, v in dict(row).items()}


def _rows(raw: Any) -> list[dict[str, Any]]:
    raw = _py(raw)
    if raw is None:
        return []
    return [_row(r) for r in raw]


class Sql:
    """`ctx.storage.sql` with Python rows. All calls are synchronous, like the platform's."""

    def __init__(self, storage: Any) -> None:
        sql = storage.sql
        raw = getattr(sql, "_binding", None) if type(sql).__name__ == "_BindingWrapper" else None
        self._sql = raw if raw is not None else sql
        self._to_js = raw is not None and _JS_NULL is not None

    def _exec(self, query: str, args: tuple) -> Any:
        if self._to_js and None in args:
            args = tuple(_JS_NULL if a is None else a for a in args)
        return self._sql.exec(query, *args)

    def run(self, query: str, *args: Any) -> int:
        """Execute for effect; returns rows written when the cursor reports it (else 0)."""
        cursor = self._exec(query, args)
        to_array = getattr(cursor, "toArray", None)
        if callable(to_array):  # drain: a cursor is lazy on the platform
            to_array()
        written = getattr(cursor, "rowsWritten", 0)
        return int(written) if isinstance(written, (int, float)) else 0

    def write(self, query: str, *args: Any) -> None:
        """Execute a statement that returns no rows, for effect only: the per-decision journal
        write, without reading `rowsWritten` (one crossing fewer than `run`). The cursor is
        still drained: workerd hands a statement back to its cache only when its cursor has
        been read to the end (src/workerd/api/sql.c++, `Cursor::endQuery`); an undrained one
        keeps it busy until V8 collects the cursor, and every later exec of the same text
        would compile it again."""
        self._exec(query, args).toArray()

    def rows(self, query: str, *args: Any) -> list[dict[str, Any]]:
        cursor = self._exec(query, args)
        to_array = getattr(cursor, "toArray", None)
        return _rows(to_array() if callable(to_array) else cursor)

    def one(self, query: str, *args: Any) -> dict[str, Any] | None:
        found = self.rows(query, *args)
        return found[0] if found else None


def migrate(sql: Sql, migrations: dict[int, tuple[str, ...]]) -> int:
    """Bring an object's storage to the newest of `migrations`; returns the version found.

    A deployed Durable Object keeps its storage across deploys, so every schema
    change is a numbered step applied once, in order, recorded in `meta`.
    """
    sql.run("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    row = sql.one("SELECT value FROM meta WHERE key = 'schema_version'")
    found = int(row["value"]) if row else 0
    for version in range(found + 1, max(migrations) + 1):
        for statement in migrations[version]:
            sql.run(statement)
        sql.run("INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value", str(version))
    return found


async def get_alarm(storage: Any) -> int | None:
    value = _py(await storage.getAlarm())
    return None if value is None else int(value)


async def set_alarm(storage: Any, at_ms: int) -> None:
    await storage.setAlarm(int(at_ms))
