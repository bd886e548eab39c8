"""ClientBucket concurrency slots: taken in the atomic decision, released once, expired
after the hold when the release never comes, and kept across a new instance."""
from __future__ import annotations

from src.tollgate import clock
from src.tollgate.concurrency import concurrency_limit
from src.tollgate.rules import Rule
from src.tollgate.wire import decode_answer, encode_decide
from tests.state.fakes import FakeStorage, make_bucket
from tests.state.support import ALL, MINUTE, Clock, run

SLOTS = Rule("inflight", concurrency_limit(2, 10), ALL)       # 2 in flight, a lost slot counts 10 s
SHADOW_SLOTS = Rule("maybe", concurrency_limit(1, 10), ALL, shadow=True)


def take(bucket, rules):
    return decode_answer(run(bucket.decide(encode_decide(rules, 1))))


def test_slots_are_taken_in_the_decision_and_freed_by_release():
    clk = Clock()
    with clock.use(clk):
        b = make_bucket()
        (d1, s1), (d2, s2) = take(b, [SLOTS]), take(b, [SLOTS])
        assert d1.allowed and d2.allowed and s1 and s2 and s1 != s2
        assert [r.remaining for r in (d1.results[0], d2.results[0])] == [1, 0]
        d3, s3 = take(b, [SLOTS])
        assert not d3.allowed and d3.denied_by == "inflight" and s3 is None
        assert 0 < d3.retry_after_ms <= 1000
        assert run(b.release(s1)) == '{"released":true}'
        assert run(b.release(s1)) == '{"released":false}', "a second release changes nothing"
        assert run(b.release("f" * 32)) == '{"released":false}' and run(b.release("nope")) == '{"released":false}'
        d4, s4 = take(b, [SLOTS])
        assert d4.allowed and s4
        assert not take(b, [SLOTS])[0].allowed, "the double release did not free a second slot"


def test_all_or_nothing_with_rate_rules():
    clk = Clock()
    with clock.use(clk):
        b = make_bucket()
        for _ in range(2):
            assert take(b, [MINUTE, SLOTS])[0].allowed
        d, slot = take(b, [MINUTE, SLOTS])     # no slot left: the minute's budget is not charged
        assert not d.allowed and d.denied_by == "inflight" and slot is None
        minute = {r.name: r for r in d.results}["minute"]
        assert minute.allowed and minute.remaining == 1
        b.slots.clear()
        assert take(b, [MINUTE, SLOTS])[0].allowed
        d, slot = take(b, [MINUTE, SLOTS])     # the minute is spent: no slot is taken either
        assert not d.allowed and d.denied_by == "minute" and slot is None
        assert b.slots.held(clk.t) == 1


def test_a_lost_slot_expires_after_its_hold_and_renewal_keeps_it():
    clk = Clock()
    storage = FakeStorage()
    with clock.use(clk):
        b = make_bucket(storage=storage)
        _, lost = take(b, [SLOTS])
        _, streaming = take(b, [SLOTS])
        again = make_bucket(storage=storage)      # the object restarted: the slots are in storage
        assert not take(again, [SLOTS])[0].allowed
        clk.t += 6_000
        assert run(again.renew(streaming)) == '{"renewed":true}'
        clk.t += 4_000                            # `lost` reaches its hold; `streaming` was renewed
        d, _ = take(again, [SLOTS])
        assert d.allowed, "the lost slot stops counting at its hold"
        assert not take(again, [SLOTS])[0].allowed
        clk.t += 6_001                            # `streaming` not renewed again: it expires too
        assert run(again.renew(streaming)) == '{"renewed":false}', "an expired slot is not revived"
        assert take(again, [SLOTS])[0].allowed


def test_a_shadow_concurrency_rule_reports_and_never_denies():
    clk = Clock()
    with clock.use(clk):
        b = make_bucket()
        assert take(b, [SHADOW_SLOTS])[0].allowed
        d, slot = take(b, [SHADOW_SLOTS])
        assert d.allowed and d.results[0].shadow and not d.results[0].allowed and slot is None


def test_what_a_slot_writes_per_request():
    """Warm bucket: taking a slot is the journal row plus one slot row, a release one row,
    a renewal one row; a denial by the concurrency rule writes nothing."""
    clk = Clock()
    with clock.use(clk):
        b = make_bucket()
        run(b.release(take(b, [MINUTE, SLOTS])[1]))       # warm: rows in memory
        log = b.ctx.storage.log
        log.clear()
        _, slot = take(b, [MINUTE, SLOTS])
        writes = b.ctx.storage.writes()
        assert len(writes) == 2 and any("slots" in q for q in writes) and any("journal" in q for q in writes)
        take(b, [MINUTE, SLOTS])
        log.clear()
        assert not take(b, [MINUTE, SLOTS])[0].allowed and b.ctx.storage.writes() == []
        run(b.renew(slot))
        run(b.release(slot))
        assert len(b.ctx.storage.writes()) == 2


def test_inspect_shows_the_free_slots():
    import json
    clk = Clock()
    with clock.use(clk):
        b = make_bucket()
        take(b, [SLOTS])
        seen = json.loads(run(b.inspect(encode_decide([SLOTS], 0))))
    assert seen["rules"]["inflight"]["remaining"] == 1 and seen["slots_held"] == 1
