"""The D1 `usage` table (schema: migrations/0001_usage.sql): its SQL text and row decoding.

Why one owner: the cron flush writes the table (worker/stores/d1.py) and an
empty bucket reads its client's rows back (durable_objects/restore.py); both
take their statements and decode their rows here, so the schema is known in
one place and neither side imports the other. Pure: callers run the
statements on their D1 binding and hand the result in.

Writes: D1 allows 100 bound parameters per statement, so only the two strings
of a row (client, rule) are bound and the integers, checked to be int, are
written as literals: 50 rows per statement. `WHERE excluded.version >
usage.version` keeps the highest version, so a replayed batch is a no-op.
"""
from __future__ import annotations

from typing import Any, Sequence

from src.tollgate.snapshots import COUNTERS, UsageRecord

MAX_BOUND_PARAMETERS = 100  # D1 limit per statement (developers.cloudflare.com/d1/platform/limits)
ROWS_PER_STATEMENT = MAX_BOUND_PARAMETERS // 2

_COLUMNS = "client, rule, period_start, allowed, admitted, denied, shadow_denied, version"
_HEAD = f"INSERT INTO usage ({_COLUMNS}, updated_at) VALUES "
_TAIL = (" ON CONFLICT (client, rule, period_start) DO UPDATE SET allowed = excluded.allowed, "
         "admitted = excluded.admitted, denied = excluded.denied, shadow_denied = excluded.shadow_denied, "
         "version = excluded.version, updated_at = excluded.updated_at WHERE excluded.version > usage.version")

CLIENT_RECORDS = f"SELECT {_COLUMNS} FROM usage WHERE client = ?"   # bind: the client key
TOTALS = "SELECT rule, allowed, admitted, denied, shadow_denied FROM usage_totals ORDER BY rule"
# bind: the first period_start counted (epoch ms); the dashboard's last 24 hours per rule (index usage_period)
RECENT_TOTALS = ("SELECT rule, SUM(allowed) AS allowed, SUM(admitted) AS admitted, SUM(denied) AS denied, "
                 "SUM(shadow_denied) AS shadow_denied FROM usage WHERE period_start >= ? GROUP BY rule ORDER BY rule")


class UsageRowError(ValueError):
    """A usage record that cannot be written (a counter that is not an integer)."""


def _literal(value: Any) -> str:
    if not isinstance(value, int) or isinstance(value, bool):
        raise UsageRowError(f"refusing a non-integer value {value!r} in a usage row")
    return str(int(value))


def upsert_statement(records: Sequence[UsageRecord], now_ms: int) -> tuple[str, list[str]]:
    """One multi-row upsert: SQL text and its bound parameters (2 per row)."""
    if len(records) > ROWS_PER_STATEMENT:
        raise ValueError(f"at most {ROWS_PER_STATEMENT} rows per statement, got {len(records)}")
    values, params = [], []
    for r in records:
        nums = ",".join(_literal(v) for v in (r.period_start_ms, r.allowed, r.admitted, r.denied, r.shadow_denied,
                                              r.version, now_ms))
        values.append(f"(?,?,{nums})")
        params += [r.client, r.rule]
    return _HEAD + ",".join(values) + _TAIL, params


def _py(value: Any) -> Any:
    # On Pyodide a D1 result may still be a JS object: duck-typed, no platform import.
    to_py = getattr(value, "to_py", None)
    return to_py() if callable(to_py) else value


def result_rows(result: Any) -> list[dict[str, Any]]:
    """The rows of a D1 `all()` result (`result["results"]`), as dicts."""
    result = _py(result)
    rows = result.get("results") if isinstance(result, dict) else getattr(result, "results", None)
    return [dict(_py(row)) for row in (_py(rows) or [])]


def records(result: Any) -> list[UsageRecord]:
    """The UsageRecords of a `CLIENT_RECORDS` result. Numbers cross JS as doubles: back to int."""
    return [UsageRecord(str(r["client"]), str(r["rule"]), int(r["period_start"]), int(r["allowed"]),
                        int(r["admitted"]), int(r["denied"]), int(r["shadow_denied"]), int(r["version"]))
            for r in result_rows(result)]


def totals(result: Any) -> dict[str, dict[str, int]]:
    """Per rule {allowed, admitted, denied, shadow_denied} from a `TOTALS` or `RECENT_TOTALS` result."""
    return {str(r["rule"]): {c: int(r[c] or 0) for c in COUNTERS} for r in result_rows(result)}
