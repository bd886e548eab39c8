"""durable_objects/outbox_pusher.py: the alarm pushes changes to the client's shard, and only what the shard confirmed is marked sent."""
from __future__ import annotations

from durable_objects.outbox_pusher import MAX_RETRY_DELAY_MS
from src.tollgate import clock
from src.tollgate.snapshots import shard_for, shard_name
from src.tollgate.usage import ACCOUNTING_PERIOD_MS
from src.tollgate.wire import encode_decide
from tests.state.fakes import FakeStorage, make_bucket
from tests.state.support import BURST, MINUTE, PERIOD0, T0, Clock, decide, run


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
    assert b.pending() == []
    # what is left is the cleanup alarm, at the end of the accounting hour (lifecycle.py)
    assert b.ctx.storage.alarm == PERIOD0 + ACCOUNTING_PERIOD_MS == b.lifecycle.cleanup_at


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


def test_retries_back_off_doubling_from_a_second_up_to_five_minutes():
    clk = Clock()
    with clock.use(clk):
        b = make_bucket(SNAPSHOT_DELAY_MS=10)
        decide(b, [MINUTE])
        b.env.OUTBOX.down = True
        waits = []
        for _ in range(11):
            run(b.alarm())
            waits.append(b.ctx.storage.alarm - T0)
    assert waits[:4] == [1000, 2000, 4000, 8000]        # SNAPSHOT_DELAY_MS below a second: from 1 s
    assert waits[-2:] == [MAX_RETRY_DELAY_MS] * 2 and max(waits) == MAX_RETRY_DELAY_MS
    assert len(b.pending()) == 1                          # nothing given up


def test_an_alarm_already_set_is_left_where_it_is():
    clk = Clock()
    storage = FakeStorage()
    storage.alarm = T0 + 999                              # e.g. a retry scheduled before an eviction
    with clock.use(clk):
        b = make_bucket(storage=storage, SNAPSHOT_DELAY_MS=10)
        decide(b, [MINUTE])
        decide(b, [MINUTE])
    assert storage.alarm == T0 + 999


def test_an_alarm_with_nothing_pending_sends_nothing():
    with clock.use(Clock()):
        b = make_bucket(SNAPSHOT_DELAY_MS=10)
        run(b.alarm())
    assert b.env.OUTBOX.objects == {}                     # no shard was even addressed


def test_the_shard_is_chosen_by_OUTBOX_SHARDS():
    with clock.use(Clock()):
        b = make_bucket("client-z", OUTBOX_SHARDS=7)
        decide(b, [MINUTE])
        run(b.alarm())
    assert list(b.env.OUTBOX.objects) == [shard_name(shard_for("client-z", 7))]
