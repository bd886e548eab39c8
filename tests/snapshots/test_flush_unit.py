"""Cron flush logic in-process: fake namespace (real SQLite per object) and D1 on sqlite3."""
from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

from durable_objects.outbox import SnapshotOutbox
from src.tollgate.snapshots import UsageRecord, encode_rows, shard_for, shard_name
from tests.snapshots.fake_d1 import FakeD1
from tests.state.fakes import FakeNamespace
from worker.scheduled import flush
from worker.stores.d1 import D1Store


def make_env(shards=4, **vars):
    env = SimpleNamespace(OUTBOX_SHARDS=str(shards), **{k: str(v) for k, v in vars.items()})
    env.OUTBOX = FakeNamespace(SnapshotOutbox, env)
    env.USAGE_DB = FakeD1()
    return env


def push(env, records):
    shards = int(env.OUTBOX_SHARDS)
    by_shard: dict[int, list] = {}
    for r in records:
        by_shard.setdefault(shard_for(r.client, shards), []).append(r)
    for i, recs in by_shard.items():
        asyncio.run(env.OUTBOX.getByName(shard_name(i)).put(encode_rows(recs)))


def depth(env):
    return sum(json.loads(asyncio.run(o.stats()))["depth"] for n, o in env.OUTBOX.objects.items()
               if n.startswith("shard-"))


def recs(n, version=1, allowed=1):
    return [UsageRecord(f"c{i:05d}", "minute", 0, allowed, allowed * 2, 1, 0, version) for i in range(n)]


def test_flush_writes_everything_in_few_store_calls_and_empties_the_outbox():
    env = make_env(shards=4)
    push(env, recs(2000))
    rep = asyncio.run(flush(env))
    assert rep.complete and rep.rows_written == 2000 and depth(env) == 0
    assert rep.store_calls == 1  # 2,000 rows < 5,000 per D1 batch
    assert env.USAGE_DB.totals() == {"minute": (2000, 4000, 2000, 0)}


def test_store_down_keeps_rows_and_counts_errors_then_catches_up_once():
    env = make_env(shards=4)
    push(env, recs(300))
    env.USAGE_DB.down = True
    for _ in range(3):
        rep = asyncio.run(flush(env))
        assert not rep.complete and rep.stopped == "store" and rep.store_errors == 1
    assert depth(env) == 300
    env.USAGE_DB.down = False
    rep = asyncio.run(flush(env))
    assert rep.complete and depth(env) == 0
    assert env.USAGE_DB.totals() == {"minute": (300, 600, 300, 0)}
    book = json.loads(asyncio.run(env.OUTBOX.getByName("metrics").stats()))
    assert book["counters"]["store_write_errors"] == {"d1": 3}


def test_same_batch_twice_counts_once_and_older_versions_never_win():
    db = FakeD1()
    store = D1Store(db)
    batch = recs(120, version=5, allowed=3)
    asyncio.run(store.write(batch, 1))
    asyncio.run(store.write(batch, 2))
    asyncio.run(store.write(recs(120, version=4, allowed=1), 3))
    assert db.totals() == {"minute": (360, 720, 120, 0)}
    assert asyncio.run(store.totals()) == {"minute": {"allowed": 360, "admitted": 720, "denied": 120,
                                                      "shadow_denied": 0}}


def test_newer_snapshot_arriving_during_a_flush_is_kept_for_the_next_run():
    env = make_env(shards=1)
    push(env, recs(10, version=1))
    shard = env.OUTBOX.getByName("shard-0")
    real_write = D1Store.write

    async def write_then_race(self, records, now_ms, deadline_ms=None):
        result = await real_write(self, records, now_ms, deadline_ms)
        await shard.put(encode_rows(recs(1, version=2, allowed=7)))  # bucket pushes mid-flush
        return result

    D1Store.write = write_then_race
    try:
        rep = asyncio.run(flush(env))
    finally:
        D1Store.write = real_write
    assert rep.acked_deleted == 9 and rep.acked_kept == 1 and depth(env) == 1
    asyncio.run(flush(env))
    assert depth(env) == 0
    assert env.USAGE_DB.totals()["minute"][0] == 9 + 7


def test_time_or_subrequest_budget_stops_with_a_cursor_and_the_next_run_continues():
    env = make_env(shards=8, FLUSH_BATCH_ROWS=50, FLUSH_SUBREQUEST_BUDGET=16)
    push(env, recs(1000))
    seen = []
    for _ in range(40):
        rep = asyncio.run(flush(env))
        seen.append(rep)
        assert rep.subrequests <= 16
        if rep.complete:
            break
    assert seen[0].stopped == "subrequests" and seen[-1].complete
    assert depth(env) == 0
    assert env.USAGE_DB.totals() == {"minute": (1000, 2000, 1000, 0)}
    assert len({r.cursor for r in seen}) > 1  # later runs start where the previous stopped


def test_expired_lease_of_a_crashed_flush_comes_back():
    from src.tollgate import clock
    env = make_env(shards=1)
    push(env, recs(5))
    shard = env.OUTBOX.getByName("shard-0")
    t = [10_000]
    with clock.use(lambda: t[0]):
        leased = json.loads(asyncio.run(shard.lease('{"limit":100,"lease_ms":1000}')))
        assert len(leased["rows"]) == 5
        assert json.loads(asyncio.run(shard.lease('{"limit":100,"lease_ms":1000}')))["rows"] == []
        t[0] += 1001  # the flush that held it died
        again = json.loads(asyncio.run(shard.lease('{"limit":100,"lease_ms":1000}')))
    assert len(again["rows"]) == 5
