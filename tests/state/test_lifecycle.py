"""durable_objects/lifecycle.py: an idle bucket deletes itself once that loses nothing."""
from __future__ import annotations

import json

from src.tollgate import clock
from src.tollgate.snapshots import shard_for, shard_name
from src.tollgate.usage import ACCOUNTING_PERIOD_MS
from src.tollgate.wire import encode_decide
from tests.state.fakes import FakeStorage, make_bucket
from tests.state.support import BURST, DAILY, MINUTE, PERIOD0, T0, Clock, decide, rows, run

HOUR_END = PERIOD0 + ACCOUNTING_PERIOD_MS


def fire(b):
    """The runtime consumes the alarm and calls alarm()."""
    b.ctx.storage.alarm = None
    run(b.alarm())


def shard(b):
    return b.env.OUTBOX.getByName(shard_name(shard_for(b.client, 16)))


def flush(b):
    """The cron flush: the store confirmed everything the shard held; the shard forgets it."""
    s = shard(b)
    lease = json.loads(run(s.lease('{"limit": 1000, "lease_ms": 60000}')))
    if lease["lease"]:
        run(s.ack(lease["lease"]))
    return lease["rows"]


def test_a_one_off_client_is_deleted_after_its_hour_once_the_store_has_its_usage():
    clk = Clock()
    with clock.use(clk):
        b = make_bucket(SNAPSHOT_DELAY_MS=50)
        assert decide(b, [BURST, MINUTE]).allowed
        fire(b)                                           # push: now the cleanup alarm
        assert b.ctx.storage.alarm == HOUR_END
        clk.t = HOUR_END
        fire(b)                                           # due, but the store has not confirmed
        assert b.ctx.storage.alarm == HOUR_END + 15 * 60_000   # IDLE_CLEANUP_RECHECK_MS later
        assert "rule_state" in b.ctx.storage.tables()
        stored = flush(b)
        clk.t = b.ctx.storage.alarm
        fire(b)
    assert b.ctx.storage.tables() == [] and b.ctx.storage.alarm is None
    assert sorted((r[1], r[3]) for r in stored) == [("burst", 1), ("minute", 1)]


def test_a_request_after_the_cleanup_starts_a_fresh_bucket_whose_usage_reaches_the_store():
    clk = Clock()
    with clock.use(clk):
        b = make_bucket(SNAPSHOT_DELAY_MS=50)
        for _ in range(3):
            decide(b, [MINUTE])
        fire(b)
        first = flush(b)
        clk.t = HOUR_END
        fire(b)
        assert b.ctx.storage.tables() == []
        clk.t += 5_000
        d = decide(b, [MINUTE])                           # the same instance, storage gone
        assert d.allowed and d.results[0].remaining == 2  # a full window, as any new client
        assert rows(b)["minute"]["version"] == 1 and rows(b)["minute"]["period_start"] == HOUR_END
        fire(b)
        second = flush(b)
    # the store's keys never collide: one row per hour, each with its own counts
    assert [(r[2], r[3]) for r in first] == [(PERIOD0, 3)] and [(r[2], r[3]) for r in second] == [(HOUR_END, 1)]


def test_a_daily_quota_keeps_the_bucket_until_the_day_is_over():
    clk = Clock()
    with clock.use(clk):
        b = make_bucket(SNAPSHOT_DELAY_MS=50)
        decide(b, [BURST, DAILY])
        fire(b)
    day_end = T0 - T0 % 86_400_000 + 86_400_000
    assert b.ctx.storage.alarm == day_end


def test_a_change_replaces_the_cleanup_alarm_with_a_push_and_the_next_push_reschedules_it():
    clk = Clock()
    with clock.use(clk):
        b = make_bucket(SNAPSHOT_DELAY_MS=50)
        decide(b, [MINUTE])
        fire(b)
        assert b.ctx.storage.alarm == HOUR_END
        clk.t += 1000
        decide(b, [MINUTE])
        assert b.ctx.storage.alarm == clk.t + 50          # the change leaves in SNAPSHOT_DELAY_MS
        fresh = make_bucket(storage=b.ctx.storage, SNAPSHOT_DELAY_MS=50)   # also after an eviction
        fire(b)
        assert b.ctx.storage.alarm == HOUR_END
        clk.t += 1000
        decide(fresh, [MINUTE])
        assert b.ctx.storage.alarm == clk.t + 50


def test_a_decision_while_the_outbox_is_asked_keeps_the_bucket():
    clk = Clock()
    with clock.use(clk):
        b = make_bucket(SNAPSHOT_DELAY_MS=50)
        decide(b, [MINUTE])
        fire(b)
        flush(b)
        clk.t = HOUR_END
        s = shard(b)
        real = s.holds

        async def holds_then_a_request(client):
            answer = await real(client)
            await b.decide(encode_decide([MINUTE], 1))    # the input gate let a request in
            return answer
        s.holds = holds_then_a_request
        fire(b)
    assert rows(b)["minute"]["allowed"] == 1 and rows(b)["minute"]["period_start"] == HOUR_END
    assert len(b.pending()) == 1 and b.ctx.storage.alarm == HOUR_END + 50


def test_a_state_no_known_rule_wrote_is_kept_and_so_is_the_bucket():
    clk = Clock()
    with clock.use(clk):
        b = make_bucket(SNAPSHOT_DELAY_MS=50)
        decide(b, [MINUTE])
        b.sql.run("DELETE FROM meta WHERE key = 'limits'")
        again = make_bucket(storage=b.ctx.storage, SNAPSHOT_DELAY_MS=50)
        again.ctx.storage.alarm = None
        run(again.alarm())
        clk.t += 30 * 86_400_000
        run(again.alarm())
    assert again.ctx.storage.alarm is None and "rule_state" in again.ctx.storage.tables()


def test_idle_cleanup_false_keeps_every_bucket():
    clk = Clock()
    with clock.use(clk):
        b = make_bucket(SNAPSHOT_DELAY_MS=50, IDLE_CLEANUP="false")
        decide(b, [MINUTE])
        fire(b)
        flush(b)
        clk.t += 2 * 86_400_000
        fire(b)
    assert b.ctx.storage.alarm is None and "rule_state" in b.ctx.storage.tables()


def test_a_warm_decision_still_writes_one_statement():
    storage = FakeStorage()
    with clock.use(Clock()):
        b = make_bucket(storage=storage)
        decide(b, [BURST, MINUTE])
        storage.log.clear()
        decide(b, [BURST, MINUTE])
    assert len(storage.log) == 1 and storage.log[0].startswith("INSERT INTO journal")  # one row (issue 13)
