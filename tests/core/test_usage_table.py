"""src/tollgate/usage_table.py: the D1 usage table's statements and row decoding (pure; the statements
run against the real schema in tests/snapshots/test_usage_schema.py)."""
from __future__ import annotations

import pytest

from src.tollgate import usage_table
from src.tollgate.snapshots import UsageRecord


class _Js:
    def __init__(self, value) -> None:
        self.value = value

    def to_py(self):
        return self.value


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
