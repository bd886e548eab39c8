"""How long the D1 store keeps usage, and the SQL that rolls it up and deletes it.

Why: the store gains a row per client, rule and hour without end, and a D1
database has a size cap. Hours older than USAGE_ROLLUP_AFTER_DAYS become one row
per client, rule and UTC day (`usage_daily`, migrations/0002_usage_daily.sql);
days older than USAGE_RETENTION_DAYS are deleted. Each step is one D1 batch of a
bounded number of rows (a transaction), so the cron can stop between steps at
its time budget, and a repeated step finds nothing left to move: idempotent.

The rollup must never count an hour twice: the hour's rows are added to the day
and deleted in the same transaction. The hourly rows are the only ones a flush
writes; an hour is rolled up only once it is USAGE_ROLLUP_AFTER_DAYS old (at
least 3 days: buckets deliver within seconds and the outbox keeps what it
accepted for two), so nothing changes it any more. A snapshot of such an old
hour arriving after all (an outbox down for days) lands in `usage` again and
is added to its day by the next rollup.

Pure: statements and their parameters; worker/stores/d1_retention.py runs them.
"""
from __future__ import annotations

from typing import Any, NamedTuple

from src.tollgate.envvars import env_int, env_str
from src.tollgate.usage import ACCOUNTING_PERIOD_MS

DAY_MS = 86_400_000
DEFAULT_ROLLUP_AFTER_DAYS = 7
DEFAULT_RETENTION_DAYS = 400          # a year of billing history, and a month to settle it
MIN_ROLLUP_AFTER_DAYS = 3
DEFAULT_ROWS_PER_STEP = 5_000


DEFAULT_RETENTION_CRON = "17 3 * * *"


def retention_cron(env: Any) -> str:
    """USAGE_RETENTION_CRON: the cron trigger (one of wrangler.toml's crons) that runs retention."""
    return (env_str(env, "USAGE_RETENTION_CRON", DEFAULT_RETENTION_CRON) or DEFAULT_RETENTION_CRON).strip()


class RetentionSettings(NamedTuple):
    rollup_after_days: int
    retention_days: int
    rows_per_step: int


def retention_settings(env: Any) -> RetentionSettings:
    """USAGE_ROLLUP_AFTER_DAYS, USAGE_RETENTION_DAYS, USAGE_RETENTION_ROWS_PER_STEP, read once here."""
    rollup = env_int(env, "USAGE_ROLLUP_AFTER_DAYS", DEFAULT_ROLLUP_AFTER_DAYS, minimum=MIN_ROLLUP_AFTER_DAYS)
    keep = env_int(env, "USAGE_RETENTION_DAYS", DEFAULT_RETENTION_DAYS, minimum=1)
    if keep <= rollup:
        raise ValueError(f"USAGE_RETENTION_DAYS ({keep}) must be above USAGE_ROLLUP_AFTER_DAYS ({rollup}): "
                         "hours are rolled into days before days are deleted")
    return RetentionSettings(rollup, keep, env_int(env, "USAGE_RETENTION_ROWS_PER_STEP", DEFAULT_ROWS_PER_STEP,
                                                   minimum=1))


def rollup_before(now_ms: int, settings: RetentionSettings) -> int:
    """Hours starting before this (a UTC day boundary) are rolled into days."""
    edge = now_ms - settings.rollup_after_days * DAY_MS
    return edge - edge % DAY_MS


def delete_before(now_ms: int, settings: RetentionSettings) -> int:
    """Days starting before this are deleted."""
    edge = now_ms - settings.retention_days * DAY_MS
    return edge - edge % DAY_MS


# The same bounded selection in both statements of a step; D1 runs a batch as one
# transaction, so they see the same rows. ORDER BY rowid too, so ties cannot differ.
_OLD_HOURS = ("SELECT rowid FROM usage WHERE period_start < ?1 ORDER BY period_start, rowid LIMIT ?2")
ROLLUP = (
    "INSERT INTO usage_daily (client, rule, day_start, allowed, admitted, denied, shadow_denied, hours, version, "
    "updated_at) "
    f"SELECT client, rule, period_start - period_start % {DAY_MS}, SUM(allowed), SUM(admitted), SUM(denied), "
    f"SUM(shadow_denied), COUNT(*), MAX(version), ?3 FROM usage WHERE rowid IN ({_OLD_HOURS}) "
    f"GROUP BY client, rule, period_start - period_start % {DAY_MS} "
    "ON CONFLICT (client, rule, day_start) DO UPDATE SET allowed = allowed + excluded.allowed, "
    "admitted = admitted + excluded.admitted, denied = denied + excluded.denied, "
    "shadow_denied = shadow_denied + excluded.shadow_denied, hours = hours + excluded.hours, "
    "version = MAX(version, excluded.version), updated_at = excluded.updated_at")
DELETE_ROLLED = f"DELETE FROM usage WHERE rowid IN ({_OLD_HOURS})"
DELETE_OLD_DAYS = ("DELETE FROM usage_daily WHERE rowid IN "
                   "(SELECT rowid FROM usage_daily WHERE day_start < ?1 ORDER BY day_start, rowid LIMIT ?2)")


def rollup_step(now_ms: int, settings: RetentionSettings) -> list[tuple[str, tuple]]:
    """One rollup step: (statement, parameters) pairs to run as one batch."""
    before, n = rollup_before(now_ms, settings), settings.rows_per_step
    return [(ROLLUP, (before, n, now_ms)), (DELETE_ROLLED, (before, n))]


def expiry_step(now_ms: int, settings: RetentionSettings) -> list[tuple[str, tuple]]:
    """One retention step: delete up to rows_per_step days past USAGE_RETENTION_DAYS."""
    return [(DELETE_OLD_DAYS, (delete_before(now_ms, settings), settings.rows_per_step))]


# Reading both tables as one: hourly rows as they are, daily rows as one period of a day.
# scripts/reconcile and the restore use it, so a rolled-up day still counts.
ALL_USAGE = ("SELECT client, rule, period_start, allowed, admitted, denied, shadow_denied, version, "
             f"{ACCOUNTING_PERIOD_MS} AS span_ms FROM usage UNION ALL "
             "SELECT client, rule, day_start, allowed, admitted, denied, shadow_denied, version, "
             f"{DAY_MS} AS span_ms FROM usage_daily")
