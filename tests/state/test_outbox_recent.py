"""durable_objects/outbox_recent.py: the dashboard's last-24-hours view of a shard's `seen` counts."""
from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import pytest

from durable_objects.outbox import SnapshotOutbox
from src.tollgate import clock
from src.tollgate.snapshots import UsageRecord, encode_rows
from tests.state.fakes import FakeStorage
from tests.state.support import PERIOD0, Clock

HOUR = 3_600_000


def outbox() -> SnapshotOutbox:
    return SnapshotOutbox(SimpleNamespace(storage=FakeStorage(), id=SimpleNamespace(name="shard-0")), SimpleNamespace())


def call(coro):
    return json.loads(asyncio.run(coro))


def test_sums_per_rule_since_the_given_hour_and_ranks_denied_clients():
    box = outbox()
    rows = [UsageRecord("a", "minute", PERIOD0 - 30 * HOUR, 9, 9, 9, 0, 1),      # older than the window
            UsageRecord("a", "minute", PERIOD0, 3, 4, 2, 0, 1),
            UsageRecord("a", "daily", PERIOD0, 3, 4, 1, 0, 1),
            UsageRecord("b", "minute", PERIOD0 + HOUR, 5, 5, 7, 0, 2),
            UsageRecord("b", "minute", PERIOD0 + HOUR, 4, 4, 6, 0, 1),              # older version: ignored
            UsageRecord("c", "minute", PERIOD0, 1, 1, 0, 2, 1)]
    with clock.use(Clock()):
        call(box.put(encode_rows(rows)))
        got = call(box.recent(json.dumps({"since_ms": PERIOD0 - 23 * HOUR, "top": 10})))
        top1 = call(box.recent(json.dumps({"since_ms": PERIOD0 - 23 * HOUR, "top": 1})))
    assert got["rules"] == {"minute": [9, 10, 9, 2], "daily": [3, 4, 1, 0]}
    assert got["denied"] == [["b", 7, {"minute": 7}], ["a", 3, {"minute": 2, "daily": 1}]]   # c never denied
    assert top1["denied"] == [["b", 7, {"minute": 7}]]


@pytest.mark.parametrize("args", ["", "[]", '{"top": 3}', '{"since_ms": -1}', '{"since_ms": 1, "top": 99}',
                                  '{"since_ms": true}'])
def test_bad_arguments_say_what_was_expected(args):
    with pytest.raises(ValueError, match="recent"):
        asyncio.run(outbox().recent(args))


def test_latency_batches_are_also_summed_per_arrival_hour_and_old_hours_forgotten():
    box = outbox()
    t = [PERIOD0 - 49 * HOUR]

    def batch(bucket: int, n: int) -> str:
        slots = [0] * 15
        slots[bucket], slots[-1] = n, n * 3000
        return json.dumps({"decision": {"burst": slots}})
    with clock.use(lambda: t[0]):
        call(box.add_latency(batch(2, 1)))                      # 49 hours ago: forgotten below
        t[0] = PERIOD0 + 10
        call(box.add_latency(batch(2, 4)))
        call(box.add_latency(batch(5, 1)))
        t[0] = PERIOD0 + HOUR + 10
        call(box.add_latency(batch(9, 2)))
        got = call(box.recent(json.dumps({"since_ms": PERIOD0 - 60 * HOUR, "top": 0})))
        stats = call(box.stats())
    hours = got["latency"]["decision"]["burst"]
    assert sorted(hours) == [str(PERIOD0), str(PERIOD0 + HOUR)]           # the 49-hour-old one is gone
    assert hours[str(PERIOD0)][2] == 4 and hours[str(PERIOD0)][5] == 1 and hours[str(PERIOD0)][-1] == 15_000
    assert hours[str(PERIOD0 + HOUR)][9] == 2
    assert stats["latency"]["decision"]["burst"][2] == 5                 # the running sums keep everything
