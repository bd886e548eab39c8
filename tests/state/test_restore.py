"""durable_objects/restore.py: restore, SEED_FROM_STORE, and restored usage charged to the limiter."""
from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import pytest

from durable_objects.restore import RESTORE_HORIZON_MS, apply_restore, charge_restored, store_records
from durable_objects.rule_store import RuleStore
from durable_objects.sql import Sql
from src.tollgate import clock
from src.tollgate.algorithms import Limit
from src.tollgate.decision import decide as decide_rules
from src.tollgate.rules import Rule
from src.tollgate.snapshots import UsageRecord
from src.tollgate.usage import ACCOUNTING_PERIOD_MS
from src.tollgate.wire import decode_decision, encode_decide
from tests.state.fakes import FakeStorage, make_bucket
from tests.state.support import ALL, DAILY, MINUTE, PERIOD0, T0, Clock, decide, rows, run


def test_restore_refills_an_empty_bucket_and_refuses_a_used_one():
    from src.tollgate.snapshots import UsageRecord, encode_rows

    period0 = T0 - T0 % ACCOUNTING_PERIOD_MS
    recs = [UsageRecord("client-a", "minute", period0 - ACCOUNTING_PERIOD_MS, 9, 9, 0, 0, 4),
            UsageRecord("client-a", "minute", period0, 5, 7, 2, 0, 11)]
    roomy = Rule("minute", Limit("fixed_window", 100, 60_000, 100), ALL)
    with clock.use(Clock()):
        b = make_bucket()
        out = json.loads(run(b.restore(encode_rows(recs))))
        assert out["ok"] and out["restored_rules"] == 1
        assert b.pending() == []  # the store already has it
        assert decide(b, [roomy]).allowed
        assert json.loads(run(b.restore(encode_rows(recs))))["ok"] is False
    [p] = b.pending()
    assert (p.period_start_ms, p.allowed, p.admitted, p.version) == (period0, 6, 8, 12)
    with pytest.raises(ValueError, match="client"):
        fresh = make_bucket(name="other")
        run(fresh.restore(encode_rows(recs)))


def test_restore_refuses_when_a_decision_arrived_while_the_store_was_read():
    from src.tollgate.snapshots import UsageRecord
    from tests.snapshots.fake_d1 import FakeD1
    from worker.stores.d1 import D1Store

    period0 = T0 - T0 % ACCOUNTING_PERIOD_MS
    db = FakeD1()
    run(D1Store(db).write([UsageRecord("client-a", "minute", period0, 1, 1, 0, 0, 4)], 1))

    class SlowD1:               # the store answers only after a decision got in
        def __init__(self) -> None:
            self.reading = asyncio.Event()
            self.answer = asyncio.Event()

        def prepare(self, query):
            stmt = db.prepare(query)
            outer = self

            class Stmt:
                def bind(self, *args):
                    bound = stmt.bind(*args)

                    class Bound:
                        async def all(self_inner):
                            outer.reading.set()
                            await outer.answer.wait()
                            return await bound.all()
                    return Bound()
            return Stmt()

    async def scenario(b):
        slow = b.env.USAGE_DB = SlowD1()
        restoring = asyncio.ensure_future(b.restore(""))
        await slow.reading.wait()
        assert decode_decision(await b.decide(encode_decide([MINUTE], 1))).allowed
        slow.answer.set()
        return json.loads(await restoring)

    with clock.use(Clock()):
        b = make_bucket(name="client-a")
        outcome = asyncio.run(scenario(b))
    assert outcome["ok"] is False and "not empty" in outcome["error"]
    r = rows(b)["minute"]
    assert (r["allowed"], r["version"]) == (1, 1)       # the live decision, not the store's counters


def test_seed_from_store_on_first_use_continues_the_stores_counters():
    from src.tollgate.snapshots import UsageRecord
    from tests.snapshots.fake_d1 import FakeD1
    from worker.stores.d1 import D1Store

    period0 = T0 - T0 % ACCOUNTING_PERIOD_MS
    db = FakeD1()
    run(D1Store(db).write([UsageRecord("client-a", "minute", period0, 2, 2, 5, 0, 9)], 1))
    with clock.use(Clock()):
        b = make_bucket(SEED_FROM_STORE="true")
        b.env.USAGE_DB = db
        decide(b, [MINUTE])
        unseeded = make_bucket(name="client-a")
        unseeded.env.USAGE_DB = db
        decide(unseeded, [MINUTE])
    [p] = b.pending()
    assert (p.allowed, p.denied, p.version) == (3, 5, 10)  # on top of the store, newer version
    [q] = unseeded.pending()
    assert (q.allowed, q.version) == (1, 1)  # without the var nothing is read


def test_seed_with_store_down_still_decides():
    from tests.snapshots.fake_d1 import FakeD1

    db = FakeD1()
    db.down = True
    with clock.use(Clock()):
        b = make_bucket(SEED_FROM_STORE="true")
        b.env.USAGE_DB = db
        assert decide(b, [MINUTE]).allowed
        assert decide(b, [MINUTE]).allowed
    assert db.calls == 1  # a down store is not asked again on every request


def test_restored_usage_counts_against_the_limit_so_restore_grants_no_fresh_quota():
    from src.tollgate.snapshots import UsageRecord, encode_rows

    period0 = T0 - T0 % ACCOUNTING_PERIOD_MS
    with clock.use(Clock()):
        b = make_bucket()
        run(b.restore(encode_rows([UsageRecord("client-a", "daily", period0, 9, 9, 0, 0, 5),
                                   UsageRecord("client-a", "daily", period0 - ACCOUNTING_PERIOD_MS, 2, 2, 0, 0, 4),
                                   UsageRecord("client-a", "minute", period0, 120, 120, 0, 0, 9)])))
        # 12/day and 11 were used in the last day before the bucket was lost: one left.
        # 3/minute: 120 in the hour is 2 per minute on average, so one left there too.
        assert decide(b, [DAILY, MINUTE]).allowed
        d = decide(b, [DAILY, MINUTE])
        assert not d.allowed and d.denied_by in ("daily", "minute")
        run(b.reset())  # an explicit admin reset does clear it
        assert decide(b, [DAILY, MINUTE]).allowed


# ------------------------------------------------------------------ the module's functions on their own
def test_apply_restore_keeps_the_latest_record_per_rule_and_queues_only_recent_usage():
    store = RuleStore(Sql(FakeStorage()))
    old = PERIOD0 - RESTORE_HORIZON_MS - ACCOUNTING_PERIOD_MS
    records = [UsageRecord("c", "daily", PERIOD0, 4, 6, 0, 0, 3),
               UsageRecord("c", "daily", PERIOD0 - ACCOUNTING_PERIOD_MS, 9, 9, 0, 0, 8),   # older hour, higher version
               UsageRecord("c", "daily", old, 50, 50, 0, 0, 1),                            # beyond any window
               UsageRecord("c", "minute", PERIOD0, 1, 0, 2, 0, 2)]                         # nothing admitted
    with clock.use(Clock()):
        assert apply_restore(store, "c", records) == 2
    rows_ = store.all_rows()
    assert (rows_["daily"].period_start, rows_["daily"].allowed, rows_["daily"].version) == (PERIOD0, 4, 3)
    assert rows_["daily"].sent_version == 3 and not store.has_unsent()   # the store holds it already
    assert sorted(store.restored_admitted("daily")) == [(PERIOD0 - ACCOUNTING_PERIOD_MS, 9), (PERIOD0, 6)]
    assert store.restored_admitted("minute") == [] and store.restored


def test_charge_restored_gives_a_short_window_its_share_of_the_hour_and_forgets_the_rest():
    store = RuleStore(Sql(FakeStorage()))
    store.add_restored("minute", PERIOD0, 120)               # 120 in the hour: 2 per minute
    store.recheck_restored()
    rows_ = {"minute": store.load(["minute"], PERIOD0)["minute"]}
    charge_restored(store, [MINUTE], rows_, T0)
    assert rows_["minute"].state is not None
    assert decide_rules([MINUTE], {"minute": rows_["minute"].state}, 0, T0).results[0].remaining == 1
    assert store.restored_admitted("minute") == [] and not store.restored


def test_store_records_reads_only_this_clients_rows_from_d1():
    from tests.snapshots.fake_d1 import FakeD1
    from worker.stores.d1 import D1Store

    db = FakeD1()
    run(D1Store(db).write([UsageRecord("client-a", "minute", PERIOD0, 2, 3, 1, 0, 5),
                           UsageRecord("client-b", "minute", PERIOD0, 7, 7, 0, 0, 1)], 1))
    got = run(store_records(SimpleNamespace(USAGE_DB=db), "client-a"))
    assert got == [UsageRecord("client-a", "minute", PERIOD0, 2, 3, 1, 0, 5)]
    with pytest.raises(ValueError, match="USAGE_DB"):
        run(store_records(SimpleNamespace(), "client-a"))
