"""Idle buckets on the local runtime, in virtual time: one-off clients leave nothing behind,
a returning client gets a fresh bucket, and the store counts every admitted request once."""
from __future__ import annotations

import asyncio
import json

from scripts.bench_lifecycle import START_MS, STEP_MS, TOLLGATE, simulate, storage_left
from scripts.bench_flush import bench_config


def test_one_off_clients_leave_no_bucket_storage_after_a_day_and_the_store_has_every_request(tmp_path):
    report = asyncio.run(simulate(tmp_path, clients=200, days=2))
    day1, day2 = report["days"]
    assert day1["admitted"] > 200 and day1["store_admitted_burst"] == day1["admitted"]
    assert day2 == {**day2, "bucket_objects_with_storage": 0, "bucket_rows": 0, "outbox_entries": 0,
                    "pending_alarms": 0, "store_admitted_burst": day1["admitted"]}
    assert day2["d1_usage_rows"] == 3 * 200          # one row per client, rule and hour: kept by the store


def test_without_idle_cleanup_every_bucket_stays(tmp_path):
    report = asyncio.run(simulate(tmp_path, clients=50, days=2, cleanup=False))
    assert report["days"][-1]["bucket_objects_with_storage"] == 50


def test_a_client_back_after_its_cleanup_gets_a_fresh_bucket_and_both_lives_are_counted(tmp_path):
    from src.localedge import LocalEdge
    from src.localedge.durable.alarms import ManualClock
    from src.tollgate import clock
    from src.tollgate.config import parse_config
    from src.tollgate.wire import decode_decision, encode_decide

    rules = tuple(parse_config(TOLLGATE).rules)
    payload = encode_decide(rules, 40)                # a whole burst at once

    async def main():
        manual = ManualClock(START_MS)
        edge = LocalEdge(bench_config(tmp_path / "cfg", {"OUTBOX_SHARDS": "16"}), tmp_path / "state", port=0,
                         build=False, crons=False, alarm_clock=manual, vars={"TOLLGATE": TOLLGATE})
        with clock.use(manual.now_ms):
            await edge.start()
            try:
                bucket = edge.env.BUCKETS.getByName("returning")
                lives = []
                for _ in range(2):
                    first = decode_decision(await bucket.decide(payload))
                    second = decode_decision(await bucket.decide(payload))
                    lives.append((first.allowed, second.allowed))
                    for _ in range(2 * 86_400_000 // STEP_MS):   # two idle days: pushed, flushed, deleted
                        await edge.alarms.advance(STEP_MS)
                        await edge.scheduled("*/5 * * * *")
                    assert storage_left(tmp_path / "state")["bucket_objects_with_storage"] == 0
                    assert json.loads(await bucket.inspect())["rules"] == {}
                rows = edge.d1("USAGE_DB").rows("SELECT period_start, allowed, admitted, denied FROM usage "
                                                "WHERE rule = 'burst' ORDER BY period_start")
            finally:
                await edge.stop()
        # each life: the full burst once, then a denial (a fresh bucket, never a second burst)
        assert lives == [(True, False), (True, False)]
        assert [(r["allowed"], r["admitted"], r["denied"]) for r in rows] == [(1, 40, 1), (1, 40, 1)]
        assert rows[1]["period_start"] - rows[0]["period_start"] == 2 * 86_400_000
    asyncio.run(main())
