"""worker/stores/d1.py: one D1 batch per write, the highest version kept, errors as StoreError."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from src.tollgate.snapshots import UsageRecord
from tests.snapshots.fake_d1 import FakeD1
from worker.stores.base import StoreError
from worker.stores.d1 import D1Store


def rec(client="c1", allowed=1, version=1, rule="minute"):
    return UsageRecord(client, rule, 3_600_000, allowed, allowed * 2, 0, 0, version)


def test_one_write_is_one_batch_call_and_a_replay_or_an_older_version_changes_nothing():
    db = FakeD1()
    store = D1Store(db, statements_per_batch=3)
    records = [rec(f"c{i:03d}") for i in range(120)] + [rec("c000", allowed=5, version=2)]
    result = asyncio.run(store.write(records, 10))
    assert (result.rows, result.subrequests, result.statements, db.calls) == (120, 1, 3, 1)
    asyncio.run(store.write([rec("c000", allowed=9, version=1)], 11))      # older: ignored
    asyncio.run(store.write(records, 12))                                   # replayed: no-op
    assert db.totals() == {"minute": (119 + 5, 2 * 119 + 10, 0, 0)}
    assert asyncio.run(store.totals()) == {"minute": {"allowed": 124, "admitted": 248, "denied": 0,
                                                      "shadow_denied": 0}}


def test_more_rows_than_one_call_holds_is_refused_before_any_call():
    db = FakeD1()
    store = D1Store(db, statements_per_batch=1)
    with pytest.raises(ValueError, match="at most 50 rows"):
        asyncio.run(store.write([rec(f"c{i:03d}") for i in range(51)], 1))
    assert db.calls == 0


def test_a_non_integer_counter_is_a_permanent_error_without_a_call():
    db = FakeD1()
    with pytest.raises(StoreError) as err:
        asyncio.run(D1Store(db).write([rec()._replace(admitted=1.5)], 1))
    assert err.value.permanent and err.value.subrequests == 0 and "non-integer" in str(err.value)
    assert db.calls == 0


def test_a_failed_batch_is_a_retryable_store_error_and_writes_nothing():
    db = FakeD1()
    db.down = True
    with pytest.raises(StoreError) as err:
        asyncio.run(D1Store(db).write([rec()], 1))
    assert not err.value.permanent and "D1 batch" in str(err.value)
    db.down = False
    assert db.totals() == {}


def test_from_env_names_the_missing_binding_and_the_bad_var():
    with pytest.raises(ValueError, match="USAGE_DB"):
        D1Store.from_env(SimpleNamespace())
    with pytest.raises(ValueError, match="D1_STATEMENTS_PER_BATCH"):
        D1Store.from_env(SimpleNamespace(USAGE_DB=FakeD1(), D1_STATEMENTS_PER_BATCH="0"))
    assert D1Store.from_env(SimpleNamespace(USAGE_DB=FakeD1(), D1_STATEMENTS_PER_BATCH="4")).max_rows_per_call == 200
