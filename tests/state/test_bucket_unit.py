"""ClientBucket driven directly with a fake ctx (real SQLite, recorded alarms)."""
from __future__ import annotations

import asyncio
import json

import pytest

from src.tollgate import clock
from src.tollgate.algorithms import Limit
from src.tollgate.rules import Match, Rule
from src.tollgate.snapshots import decode_rows, shard_for, shard_name
from src.tollgate.usage import ACCOUNTING_PERIOD_MS
from src.tollgate.wire import decode_decision, encode_decide
from tests.state.fakes import FakeStorage, make_bucket

T0 = 1_800_000_000_000 - 1_800_000_000_000 % ACCOUNTING_PERIOD_MS + 1000
ALL = Match(None, None)
BURST = Rule("burst", Limit("gcra", 5, 1000, 5), ALL)
MINUTE = Rule("minute", Limit("fixed_window", 3, 60_000, 3), ALL)
SHADOW = Rule("shadow", Limit("fixed_window", 1, 60_000, 1), ALL, shadow=True)
DAILY = Rule("daily", Limit("fixed_window", 12, 86_400_000, 12), ALL)


def run(coro):
    return asyncio.run(coro)


class Clock:
    def __init__(self, t: int = T0) -> None:
        self.t, self.reads = t, 0

    def __call__(self) -> int:
        self.reads += 1
        return self.t


def decide(bucket, rules, cost=1):
    return decode_decision(run(bucket.decide(encode_decide(rules, cost))))


def rows(bucket):
    return {r["rule"]: r for r in bucket.sql.rows("SELECT * FROM rule_state")}


def test_admits_up_to_the_limit_and_state_survives_a_new_instance():
    clk = Clock()
    storage = FakeStorage()
    with clock.use(clk):
        b = make_bucket(storage=storage)
        assert [decide(b, [MINUTE]).allowed for _ in range(3)] == [True] * 3
        again = make_bucket(storage=storage)  # object evicted and recreated: same storage
        d = decide(again, [MINUTE])
    assert not d.allowed and d.denied_by == "minute" and d.retry_after_ms > 0
    r = rows(again)["minute"]
    assert (r["allowed"], r["admitted"], r["denied"]) == (3, 3, 1)


def test_denied_request_writes_one_row_and_keeps_every_limiter_state():
    clk = Clock()
    with clock.use(clk):
        b = make_bucket()
        for _ in range(3):
            assert decide(b, [BURST, MINUTE]).allowed
        before = rows(b)
        b.ctx.storage.log.clear()
        d = decide(b, [BURST, MINUTE])
    assert not d.allowed and d.denied_by == "minute"
    writes = b.ctx.storage.writes()
    assert len(writes) == 1 and writes[0].startswith("INSERT INTO rule_state")
    after = rows(b)
    for name in ("burst", "minute"):
        assert [after[name][s] for s in ("s0", "s1", "s2")] == [before[name][s] for s in ("s0", "s1", "s2")]
    assert after["burst"] == before["burst"]  # the rule that admitted is not charged
    assert after["minute"]["denied"] == before["minute"]["denied"] + 1
    assert after["minute"]["version"] == before["minute"]["version"] + 1


def test_a_warm_bucket_decides_with_one_statement_and_a_new_instance_sees_the_same_state():
    clk = Clock()
    storage = FakeStorage()
    with clock.use(clk):
        b = make_bucket(storage=storage)
        assert decide(b, [BURST, MINUTE]).allowed          # cold: reads its rows once
        storage.log.clear()
        d = decide(b, [BURST, MINUTE])
        assert d.allowed
        assert len(storage.log) == 1 and storage.log[0].startswith("INSERT INTO rule_state")
        fresh = make_bucket(storage=storage)                # evicted: reads what the warm one wrote
        assert [r.remaining for r in decide(fresh, [BURST, MINUTE]).results] == \
               [r.remaining - 1 for r in d.results]


def test_a_failed_write_drops_the_rows_it_had_changed_in_memory():
    clk = Clock()
    storage = FakeStorage()
    with clock.use(clk):
        b = make_bucket(storage=storage)
        assert decide(b, [MINUTE]).allowed
        real_exec = storage.sql.exec

        def failing(query, *args):
            if query.lstrip().upper().startswith("INSERT INTO RULE_STATE"):
                raise RuntimeError("SQLITE_FULL")
            return real_exec(query, *args)
        storage.sql.exec = failing
        with pytest.raises(RuntimeError):
            decide(b, [MINUTE])                             # counted in memory, never stored
        storage.sql.exec = real_exec
        # the failed request consumed nothing: two more fit under the limit of 3, not one
        assert [decide(b, [MINUTE]).allowed for _ in range(3)] == [True, True, False]
    assert (rows(b)["minute"]["allowed"], rows(b)["minute"]["denied"]) == (3, 1)


def test_clock_read_once_per_decision_and_cost_counts_admitted_units():
    clk = Clock()
    with clock.use(clk):
        b = make_bucket()
        clk.reads = 0
        d = decide(b, [BURST, MINUTE], cost=2)
        assert clk.reads == 1
    assert d.allowed
    assert rows(b)["burst"]["admitted"] == 2 and rows(b)["burst"]["allowed"] == 1


def test_shadow_rule_counts_would_be_denials_without_denying():
    with clock.use(Clock()):
        b = make_bucket()
        results = [decide(b, [MINUTE, SHADOW]) for _ in range(3)]
    assert all(d.allowed for d in results)
    s = rows(b)["shadow"]
    assert (s["allowed"], s["shadow_denied"]) == (1, 2)


def test_alarm_is_set_after_a_change_and_pushes_a_snapshot_to_the_clients_shard():
    clk = Clock()
    with clock.use(clk):
        b = make_bucket(SNAPSHOT_DELAY_MS=50, OUTBOX_SHARDS=4)
        decide(b, [BURST, MINUTE])
        assert b.ctx.storage.alarm == T0 + 50
        b.ctx.storage.alarm = None  # the runtime consumed it and calls alarm()
        run(b.alarm())
    shard = b.env.OUTBOX.objects[shard_name(shard_for("client-a", 4))]
    entries = shard.sql.rows("SELECT rule, allowed, version FROM entry ORDER BY rule")
    assert [(e["rule"], e["allowed"], e["version"]) for e in entries] == [("burst", 1, 1), ("minute", 1, 1)]
    assert b.pending() == [] and b.ctx.storage.alarm is None


def test_outbox_down_keeps_the_change_and_rearms_the_alarm():
    clk = Clock()
    with clock.use(clk):
        b = make_bucket(SNAPSHOT_DELAY_MS=10)
        decide(b, [MINUTE])
        b.env.OUTBOX.down = True
        b.ctx.storage.alarm = None
        run(b.alarm())
        assert b.ctx.storage.alarm is not None and b.ctx.storage.alarm > T0
        assert len(b.pending()) == 1
        b.env.OUTBOX.down = False
        b.ctx.storage.alarm = None
        run(b.alarm())
    assert b.pending() == []


def test_closed_period_is_kept_until_the_outbox_confirmed_it():
    clk = Clock()
    with clock.use(clk):
        b = make_bucket(SNAPSHOT_DELAY_MS=10)
        decide(b, [MINUTE])
        decide(b, [MINUTE])
        clk.t += ACCOUNTING_PERIOD_MS  # next hour, nothing sent yet
        decide(b, [MINUTE])
        pending = sorted((r.period_start_ms, r.allowed) for r in b.pending())
        period0 = T0 - T0 % ACCOUNTING_PERIOD_MS
        assert pending == [(period0, 2), (period0 + ACCOUNTING_PERIOD_MS, 1)]
        b.env.OUTBOX.down = True
        run(b.alarm())
        assert len(b.pending()) == 2  # nothing lost on failure
        b.env.OUTBOX.down = False
        run(b.alarm())
    assert b.pending() == []
    shard = next(iter(b.env.OUTBOX.objects.values()))
    got = sorted((e["period_start"], e["allowed"]) for e in shard.sql.rows("SELECT * FROM entry"))
    assert got == pending


def test_change_during_send_stays_dirty():
    clk = Clock()
    with clock.use(clk):
        b = make_bucket(SNAPSHOT_DELAY_MS=10)
        decide(b, [MINUTE])
        outbox = b.env.OUTBOX.getByName(shard_name(shard_for("client-a", 16)))
        real_put = outbox.put

        async def put_then_race(rows):
            result = await real_put(rows)
            decide_coro = b.decide(encode_decide([MINUTE], 1))  # a request lands mid-send
            await decide_coro
            return result

        outbox.put = put_then_race
        b.ctx.storage.alarm = None
        run(b.alarm())
        outbox.put = real_put
    left = b.pending()
    assert [(r.allowed, r.version) for r in left] == [(2, 2)]
    assert b.ctx.storage.alarm is not None


def test_reset_forgets_limiter_state_but_keeps_usage():
    with clock.use(Clock()):
        b = make_bucket()
        for _ in range(3):
            decide(b, [MINUTE])
        assert not decide(b, [MINUTE]).allowed
        out = json.loads(run(b.reset()))
        assert out["reset_rules"] == 1
        assert decide(b, [MINUTE]).allowed
    r = rows(b)["minute"]
    assert (r["allowed"], r["denied"]) == (4, 1)


def test_inspect_reports_usage_and_remaining():
    with clock.use(Clock()):
        b = make_bucket()
        decide(b, [MINUTE], cost=2)
        info = json.loads(run(b.inspect(encode_decide([MINUTE], 0))))
    m = info["rules"]["minute"]
    assert info["client"] == "client-a"
    assert (m["allowed"], m["admitted"], m["remaining"]) == (1, 2, 1)
    assert info["unsent"] == 1


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


def test_schema_version_is_recorded_and_migration_is_idempotent():
    storage = FakeStorage()
    make_bucket(storage=storage)
    make_bucket(storage=storage)
    rows_ = storage.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchall()
    assert [r[0] for r in rows_] == ["2"]


def test_a_v1_object_is_migrated_in_place_keeping_its_state():
    from durable_objects.rule_store import MIGRATIONS
    storage = FakeStorage()  # storage as an object deployed with schema 1 left it
    storage.db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    for statement in MIGRATIONS[1]:
        storage.db.execute(statement)
    storage.db.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    storage.db.execute("INSERT INTO rule_state VALUES ('minute', NULL, NULL, NULL, ?, 1, 1, 0, 0, 1, 1)",
                       (T0 - T0 % ACCOUNTING_PERIOD_MS,))
    with clock.use(Clock()):
        new = make_bucket(storage=storage)
        decide(new, [MINUTE])
    assert storage.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == "2"
    assert storage.db.execute("SELECT COUNT(*) FROM sqlite_master WHERE name='restored_usage'").fetchone()[0] == 1
    assert (rows(new)["minute"]["allowed"], rows(new)["minute"]["version"]) == (2, 2)


def test_bad_payload_names_the_problem():
    b = make_bucket()
    with pytest.raises(ValueError, match="cost"):
        run(b.decide('{"v":1,"cost":-1,"rules":[]}'))
    with pytest.raises(ValueError, match="algorithm"):
        run(b.decide('{"v":1,"cost":1,"rules":[["x","nope",1,1,1,0,"open"]]}'))


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
