"""Close SQLite connections off the event loop.

Closing the last connection of a WAL database checkpoints it and deletes the
-wal/-shm files: 3-15 ms of fsync and metadata work on this kind of disk,
which would stall every request while the LRU evicts idle objects. One
background thread does the closing (it is not on any request's path);
everything was committed before the connection is handed over, and a new
connection to the same file is safe meanwhile (SQLite's own file locking).
"""
from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor

_executor: ThreadPoolExecutor | None = None


def close_later(conn: sqlite3.Connection, fast: bool = False) -> None:
    """Close `conn` in the closer thread; `fast` skips the checkpoint's fsyncs (shutdown:
    the data is in the OS either way, as after a SIGKILL)."""
    global _executor
    if fast:
        conn.execute("PRAGMA synchronous=OFF")
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="localedge-sqlite-close")
    _executor.submit(conn.close)


def drain() -> None:
    """Wait until every handed-over connection is closed (blocking; call from a thread at shutdown)."""
    global _executor
    executor, _executor = _executor, None
    if executor is not None:
        executor.shutdown(wait=True)
