"""src/tollgate/usage_table.py's statements against the real schema (migrations/) on SQLite."""
from __future__ import annotations

import sqlite3
from pathlib import Path

from src.tollgate import usage_table
from src.tollgate.snapshots import UsageRecord

MIGRATION = Path(__file__).resolve().parents[2] / "migrations" / "0001_usage.sql"


def db() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.executescript(MIGRATION.read_text())
    return conn


def test_an_upsert_binds_two_values_a_row_and_keeps_the_highest_version_on_the_real_schema():
    conn = db()
    rows = [UsageRecord(f"c{i}", "daily", 3_600_000, 1, 2, 0, 0, 3) for i in range(usage_table.ROWS_PER_STATEMENT)]
    sql, params = usage_table.upsert_statement(rows, 99)
    assert len(params) == 2 * usage_table.ROWS_PER_STATEMENT <= usage_table.MAX_BOUND_PARAMETERS
    conn.execute(sql, params)
    conn.execute(*usage_table.upsert_statement([rows[0]._replace(allowed=50, version=2)], 100))  # older
    conn.execute(*usage_table.upsert_statement([rows[1]._replace(allowed=7, version=4)], 101))   # newer
    got = usage_table.records({"results": [dict(zip(("client", "rule", "period_start", "allowed", "admitted",
                                                     "denied", "shadow_denied", "version"), r))
                                           for r in conn.execute(usage_table.CLIENT_RECORDS, ("c1",))]})
    assert got == [UsageRecord("c1", "daily", 3_600_000, 7, 2, 0, 0, 4)]
    totals = conn.execute(usage_table.TOTALS).fetchall()
    assert totals == [("daily", usage_table.ROWS_PER_STATEMENT + 6, 2 * usage_table.ROWS_PER_STATEMENT, 0, 0)]


def test_recent_totals_sum_the_hours_from_the_given_start_on_the_real_schema():
    conn = db()
    hour = 3_600_000
    rows = [UsageRecord("a", "daily", 10 * hour, 5, 5, 1, 0, 1), UsageRecord("b", "daily", 11 * hour, 2, 4, 3, 0, 1),
            UsageRecord("a", "daily", 34 * hour, 1, 1, 0, 0, 1), UsageRecord("a", "burst", 34 * hour, 1, 1, 2, 1, 1)]
    conn.execute(*usage_table.upsert_statement(rows, 99))
    names = ("rule", "allowed", "admitted", "denied", "shadow_denied")

    def recent(since_ms):
        return usage_table.totals({"results": [dict(zip(names, r)) for r in
                                               conn.execute(usage_table.RECENT_TOTALS, (since_ms,))]})
    assert recent(11 * hour) == {"burst": {"allowed": 1, "admitted": 1, "denied": 2, "shadow_denied": 1},
                                 "daily": {"allowed": 3, "admitted": 5, "denied": 3, "shadow_denied": 0}}
    assert recent(35 * hour) == {}
