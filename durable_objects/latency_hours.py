"""Latency histograms per UTC hour in a SnapshotOutbox shard, so the dashboard can show
percentiles over time.

Why a second table: `latency` (durable_objects/outbox.py) keeps running sums for
/__tollgate/metrics, where Prometheus makes the time series; the dashboard page
has no Prometheus, and running sums alone cannot say what the p99 was an hour
ago. Each isolate's batch (`add_latency`) is also added to its arrival hour here.
A batch holds at most LATENCY_BATCH_MS (10 s by default) of observations, so a
batch that straddles an hour's end counts in the later hour. Hours older than
KEEP_MS are deleted as new batches arrive.
"""
from __future__ import annotations

from typing import Any

from src.tollgate.usage import period_start

KEEP_MS = 2 * 86_400_000
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS latency_hour (
         kind TEXT NOT NULL, rules TEXT NOT NULL, period_start INTEGER NOT NULL,
         bucket INTEGER NOT NULL,          -- as in latency: index into BOUNDS_MS (+Inf last), -1: sum in µs
         value INTEGER NOT NULL,
         PRIMARY KEY (kind, rules, period_start, bucket))""",
    "CREATE INDEX IF NOT EXISTS latency_hour_period ON latency_hour (period_start)",
)


def add(sql: Any, kind: str, rules: str, now_ms: int, bucket: int, n: int) -> None:
    """Add `n` to one bucket (or, bucket -1, the sum) of the hour holding `now_ms`."""
    sql.run("INSERT INTO latency_hour (kind, rules, period_start, bucket, value) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(kind, rules, period_start, bucket) DO UPDATE SET value = value + excluded.value",
            kind, rules, period_start(now_ms), bucket, n)


def forget(sql: Any, now_ms: int) -> None:
    """Delete the hours older than KEEP_MS (one indexed statement; nothing to delete most of the time)."""
    sql.run("DELETE FROM latency_hour WHERE period_start < ?", period_start(now_ms) - KEEP_MS)


def since(sql: Any, since_ms: int, slots: int) -> dict[str, dict[str, dict[str, list[int]]]]:
    """`{kind: {rules: {"<period_start>": [count per bucket..., sum µs]}}}` for the hours from `since_ms`."""
    out: dict[str, dict[str, dict[str, list[int]]]] = {}
    for r in sql.rows("SELECT kind, rules, period_start, bucket, value FROM latency_hour WHERE period_start >= ?",
                      since_ms):
        hours = out.setdefault(r["kind"], {}).setdefault(r["rules"], {})
        hours.setdefault(str(int(r["period_start"])), [0] * slots)[int(r["bucket"])] = int(r["value"])
    return out
