"""Usage accounting periods: usage is counted per UTC hour per rule.

Why a fixed hour: the store keys usage by (client, rule, period start) so a
snapshot can be upserted idempotently; an hour keeps rows few while letting
billing and reconciliation slice by day or month exactly.
"""
from __future__ import annotations

ACCOUNTING_PERIOD_MS = 3_600_000


def period_start(now_ms: int) -> int:
    """Start (epoch ms, UTC) of the accounting period that contains `now_ms`."""
    if not isinstance(now_ms, int) or isinstance(now_ms, bool):
        raise TypeError(f"now_ms must be an integer number of milliseconds, got {now_ms!r}")
    return now_ms - now_ms % ACCOUNTING_PERIOD_MS
