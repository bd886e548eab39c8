"""durable_objects/rotation.py: a new IDENTITY_SECRET renames a bucket; its limiter state moves, usage stays."""
from __future__ import annotations

import json
from types import SimpleNamespace

from src.tollgate import clock
from src.tollgate.wire import decode_decision, encode_decide
from tests.state.fakes import FakeNamespace
from tests.state.support import BURST, DAILY, Clock, rows, run

OLD, NEW = "old-name", "new-name"


def buckets(**vars):
    from durable_objects.bucket import ClientBucket
    from durable_objects.outbox import SnapshotOutbox
    env = SimpleNamespace(**{k: str(v) for k, v in vars.items()})
    env.OUTBOX = FakeNamespace(SnapshotOutbox, env)
    env.BUCKETS = FakeNamespace(ClientBucket, env)
    return env.BUCKETS


def decide(ns, name, rules, previous=None):
    args = (encode_decide(rules, 1),) + ((previous,) if previous else ())
    return decode_decision(run(ns.getByName(name).decide(*args)))


def test_the_renamed_bucket_takes_the_old_state_so_rotation_hands_out_no_fresh_burst():
    with clock.use(Clock()):
        ns = buckets()
        assert [decide(ns, OLD, [BURST, DAILY]).allowed for _ in range(6)] == [True] * 5 + [False]
        d = decide(ns, NEW, [BURST, DAILY], previous=OLD)
        assert not d.allowed and d.denied_by == "burst"                      # still empty: no fresh burst
        daily = {r.name: r.remaining for r in d.results}["daily"]
        assert daily == 12 - 5                                                 # the daily quota carried too
    old, new = ns.objects[OLD], ns.objects[NEW]
    assert rows(old)["burst"]["s0"] is None and old.rotation.moved_to == NEW  # forgotten there
    # usage stays where it was counted: 5 admitted under the old name, 1 denied under the new
    assert (rows(old)["burst"]["allowed"], rows(new)["burst"]["allowed"], rows(new)["burst"]["denied"]) == (5, 0, 1)


def test_a_worker_still_on_the_old_secret_is_answered_by_the_new_bucket_and_counted_there():
    clk = Clock()
    with clock.use(clk):
        ns = buckets()
        for _ in range(3):
            decide(ns, OLD, [BURST])
        assert decide(ns, NEW, [BURST], previous=OLD).allowed                 # 4th of 5
        mixed = [decide(ns, OLD, [BURST]).allowed, decide(ns, NEW, [BURST], previous=OLD).allowed,
                 decide(ns, OLD, [BURST]).allowed]
    assert mixed == [True, False, False]                                       # 5 in all, never more
    assert rows(ns.objects[NEW])["burst"]["allowed"] == 2 and rows(ns.objects[OLD])["burst"]["allowed"] == 3


def test_a_client_the_old_secret_never_saw_starts_fresh_and_the_old_name_goes_after_the_hold():
    clk = Clock()
    with clock.use(clk):
        ns = buckets()
        assert decide(ns, NEW, [BURST], previous=OLD).results[0].remaining == 4
        old = ns.objects[OLD]
        hold_end = old.rotation.keep_until()
        assert old.ctx.storage.alarm == hold_end and hold_end > clk.t + 86_400_000
        clk.t = hold_end
        old.ctx.storage.alarm = None
        run(old.alarm())
    assert old.ctx.storage.tables() == []


def test_a_second_decision_on_the_new_bucket_does_not_ask_again():
    with clock.use(Clock()):
        ns = buckets()
        decide(ns, OLD, [BURST])
        decide(ns, NEW, [BURST], previous=OLD)
        calls = []
        real = ns.objects[OLD].hand_over

        async def counted(new_client):
            calls.append(new_client)
            return await real(new_client)
        ns.objects[OLD].hand_over = counted
        for _ in range(3):
            decide(ns, NEW, [BURST], previous=OLD)
    assert calls == []
    assert json.loads(run(ns.objects[NEW].inspect()))["rules"]["burst"]["allowed"] == 4


def test_settings_refuse_a_previous_secret_equal_to_the_current_one():
    import pytest

    from worker.settings import SettingsError, parse_settings
    env = SimpleNamespace(TOLLGATE={"rules": [{"name": "b", "limit": "1/second"}]}, IDENTITY_SECRET="s",
                          IDENTITY_SECRET_PREVIOUS="s", BUCKETS=object())
    with pytest.raises(SettingsError, match="IDENTITY_SECRET_PREVIOUS: equals IDENTITY_SECRET"):
        parse_settings(env)
    env.IDENTITY_SECRET_PREVIOUS = "old"
    assert parse_settings(env).previous_secret == b"old"
