"""src/tollgate/usage_table.py: the D1 usage table's statements and row decoding."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from src.tollgate import usage_table
from src.tollgate.snapshots import UsageRecord

MIGRATION = Path(__file__).resolve().parents[2] / "migrations" / "0001_usage.sql"


class _Js:
    def __init__(self, value) -> None:
        self.value = value

    def to_py(self):
        return self.value


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


def test_an_upsert_refuses_too_many_rows_and_non_integer_counters():
    one = UsageRecord("c", "r", 0, 1, 1, 0, 0, 1)
    with pytest.raises(ValueError, match="at most 50 rows"):
        usage_table.upsert_statement([one] * 51, 1)
    for bad in (one._replace(admitted=1.5), one._replace(denied=True), one._replace(version="3")):
        with pytest.raises(usage_table.UsageRowError, match="non-integer"):
            usage_table.upsert_statement([bad], 1)


def test_rows_decode_from_js_shaped_results_with_doubles():
    row = {"client": "c", "rule": "r", "period_start": 3600000.0, "allowed": 2.0, "admitted": 3.0,
           "denied": 0.0, "shadow_denied": 1.0, "version": 9.0}
    got = usage_table.records(_Js({"results": _Js([_Js(row)]), "success": True}))
    assert got == [UsageRecord("c", "r", 3_600_000, 2, 3, 0, 1, 9)]
    assert all(type(v) is int for v in got[0][2:])
    assert usage_table.records({"results": []}) == [] and usage_table.result_rows({}) == []


def test_totals_decode_per_rule():
    result = {"results": [{"rule": "daily", "allowed": 4.0, "admitted": 8, "denied": 1, "shadow_denied": 0}]}
    assert usage_table.totals(result) == {"daily": {"allowed": 4, "admitted": 8, "denied": 1, "shadow_denied": 0}}
