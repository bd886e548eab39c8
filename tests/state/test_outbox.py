"""durable_objects/outbox.py: highest version per key, lease then ack, durable counters, totals once."""
from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import pytest

from durable_objects.outbox import SEEN_KEEP_MS, SnapshotOutbox
from src.tollgate import clock
from src.tollgate.snapshots import UsageRecord, encode_rows
from tests.state.fakes import FakeStorage
from tests.state.support import PERIOD0, T0, Clock


def outbox() -> SnapshotOutbox:
    return SnapshotOutbox(SimpleNamespace(storage=FakeStorage(), id=SimpleNamespace(name="shard-0")), SimpleNamespace())


def call(coro):
    return json.loads(asyncio.run(coro))


def rec(allowed: int, version: int, client: str = "c") -> UsageRecord:
    return UsageRecord(client, "minute", PERIOD0, allowed, allowed, 0, 0, version)


def test_put_keeps_the_highest_version_and_totals_count_only_what_is_new():
    box = outbox()
    with clock.use(Clock()):
        call(box.put(encode_rows([rec(2, 2)])))
        call(box.put(encode_rows([rec(1, 1)])))          # older snapshot arriving late
        call(box.put(encode_rows([rec(2, 2)])))          # re-sent after a lost reply
        call(box.put(encode_rows([rec(5, 3)])))
        stats = call(box.stats())
    assert stats["depth"] == 1 and stats["totals"] == {"minute": [5, 5, 0, 0]}
    [row] = box.sql.rows("SELECT allowed, version FROM entry")
    assert (row["allowed"], row["version"]) == (5, 3)


def test_ack_deletes_only_what_was_leased_and_keeps_a_newer_version():
    box = outbox()
    with clock.use(Clock()):
        call(box.put(encode_rows([rec(1, 1, "a"), rec(1, 1, "b")])))
        lease = call(box.lease('{"limit": 10, "lease_ms": 1000}'))
        call(box.put(encode_rows([rec(4, 2, "b")])))     # b changed during the flush
        assert call(box.ack(lease["lease"])) == {"deleted": 1, "kept": 1}
        again = call(box.lease('{"limit": 10, "lease_ms": 1000}'))
    assert [(r[0], r[3], r[7]) for r in again["rows"]] == [("b", 4, 2)]


def test_release_makes_leased_rows_available_at_once():
    box = outbox()
    with clock.use(Clock()):
        call(box.put(encode_rows([rec(1, 1)])))
        lease = call(box.lease('{"limit": 10, "lease_ms": 60000}'))
        assert call(box.release(lease["lease"])) == {"released": 1}
        assert len(call(box.lease('{"limit": 10, "lease_ms": 60000}'))["rows"]) == 1


def test_seen_forgets_hours_older_than_two_days_on_ack():
    box = outbox()
    old = UsageRecord("c", "minute", PERIOD0 - SEEN_KEEP_MS - 3_600_000, 1, 1, 0, 0, 1)
    with clock.use(Clock(T0)):
        call(box.put(encode_rows([old, rec(1, 1)])))
        call(box.ack(call(box.lease('{"limit": 10, "lease_ms": 1000}'))["lease"]))
    assert [r["period_start"] for r in box.sql.rows("SELECT period_start FROM seen")] == [PERIOD0]


def test_counters_and_gauges_are_durable_and_bad_arguments_name_the_field():
    box = outbox()
    call(box.count('{"name": "bucket_errors", "label": "open"}'))
    call(box.count('{"name": "bucket_errors", "label": "open", "n": 2}'))
    call(box.set_gauges('{"flush_cursor": 3}'))
    stats = call(box.stats())
    assert stats["counters"] == {"bucket_errors": {"open": 3}} and stats["gauges"] == {"flush_cursor": 3}
    with pytest.raises(ValueError, match="count.n: expected a positive integer"):
        asyncio.run(box.count('{"name": "x", "n": 0}'))
    with pytest.raises(ValueError, match="set_gauges.flush_cursor: expected an integer"):
        asyncio.run(box.set_gauges('{"flush_cursor": "3"}'))
    with pytest.raises(ValueError, match="lease: expected a JSON object"):
        asyncio.run(box.lease("[1]"))
