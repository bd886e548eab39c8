"""Where usage travels (bucket → outbox shard → store) and the vars that shape it.

Why one module: the bucket's alarm, the cron flush and the metrics scrape must
agree on the shard count and object names, or a snapshot lands in a shard
nobody drains. Each var is read by exactly one function here; the Worker and
the Durable Objects both call it, so neither imports the other's constants.
"""
from __future__ import annotations

from typing import Any

from src.tollgate.envvars import env_bool, env_int

METRICS_OBJECT = "metrics"           # the SnapshotOutbox object that keeps flush bookkeeping
DEFAULT_OUTBOX_SHARDS = 16
DEFAULT_SNAPSHOT_DELAY_MS = 5_000    # first change in a bucket → its alarm pushes to the outbox
DEFAULT_FLUSH_TIME_BUDGET_MS = 20_000
DEFAULT_FLUSH_SUBREQUEST_BUDGET = 900   # below the 1,000 subrequests one Worker invocation may make


def outbox_shards(env: Any) -> int:
    """OUTBOX_SHARDS: how many SnapshotOutbox shards the clients are hashed over (>= 1)."""
    return env_int(env, "OUTBOX_SHARDS", DEFAULT_OUTBOX_SHARDS, minimum=1)


def snapshot_delay_ms(env: Any) -> int:
    """SNAPSHOT_DELAY_MS: how long a bucket gathers changes before its alarm sends them."""
    return env_int(env, "SNAPSHOT_DELAY_MS", DEFAULT_SNAPSHOT_DELAY_MS)


def seed_from_store(env: Any) -> bool:
    """SEED_FROM_STORE: an empty bucket first takes its counters from the D1 store."""
    return env_bool(env, "SEED_FROM_STORE")


def flush_time_budget_ms(env: Any) -> int:
    """FLUSH_TIME_BUDGET_MS: how long one cron invocation (the flush or the retention) may work."""
    return env_int(env, "FLUSH_TIME_BUDGET_MS", DEFAULT_FLUSH_TIME_BUDGET_MS, minimum=1)


def flush_subrequest_budget(env: Any) -> int:
    """FLUSH_SUBREQUEST_BUDGET: subrequests one cron invocation may make (>= 8: a lease, a write, acks)."""
    return env_int(env, "FLUSH_SUBREQUEST_BUDGET", DEFAULT_FLUSH_SUBREQUEST_BUDGET, minimum=8)
