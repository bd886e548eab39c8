"""Where flushed usage goes: one interface, chosen by the SNAPSHOT_STORE var."""
from __future__ import annotations

from typing import Any

from src.tollgate.envvars import env_str
from worker.stores.base import StoreError, UsageStore, WriteResult

__all__ = ["StoreError", "UsageStore", "WriteResult", "open_store", "store_kind"]


def store_kind(env: Any) -> str:
    """SNAPSHOT_STORE as written, lower-cased ("d1" when unset); `open_store` refuses an unknown one.
    The one reader of the var: the flush, the retention cron, the metrics and the dashboard."""
    return (env_str(env, "SNAPSHOT_STORE", "d1") or "d1").strip().lower()


def open_store(env: Any) -> UsageStore:
    """`SNAPSHOT_STORE = "d1"` (default, binding USAGE_DB) or `"http"` (SNAPSHOT_SINK_URL)."""
    kind = store_kind(env)
    if kind == "d1":
        from worker.stores.d1 import D1Store
        return D1Store.from_env(env)
    if kind == "http":
        from worker.stores.http_sink import HttpSink
        return HttpSink.from_env(env)
    raise ValueError(f"SNAPSHOT_STORE: expected d1 or http, got {kind!r}")
