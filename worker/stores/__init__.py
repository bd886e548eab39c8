"""Where flushed usage goes: one interface, chosen by the SNAPSHOT_STORE var."""
from __future__ import annotations

from typing import Any

from src.tollgate.envvars import env_str
from worker.stores.base import StoreError, UsageStore, WriteResult

__all__ = ["StoreError", "UsageStore", "WriteResult", "open_store"]


def open_store(env: Any) -> UsageStore:
    """`SNAPSHOT_STORE = "d1"` (default, binding USAGE_DB) or `"http"` (SNAPSHOT_SINK_URL)."""
    kind = (env_str(env, "SNAPSHOT_STORE", "d1") or "d1").strip().lower()
    if kind == "d1":
        from worker.stores.d1 import D1Store
        return D1Store.from_env(env)
    if kind == "http":
        from worker.stores.http_sink import HttpSink
        return HttpSink.from_env(env)
    raise ValueError(f"SNAPSHOT_STORE: expected d1 or http, got {kind!r}")
