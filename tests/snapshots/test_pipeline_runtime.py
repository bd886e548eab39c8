"""Usage from buckets to the store through the local runtime: real Durable Object
namespaces (one SQLite file per object, one event at a time, persisted alarms), D1 on
SQLite, Default.scheduled as a cron trigger runs it. Traffic is driven in-process
through the BUCKETS namespace (RPC copies, like the Worker's one call per request);
/__tollgate/metrics is read over real HTTP."""
from __future__ import annotations

import asyncio
import json
import random
import urllib.request

from src.tollgate import clock
from durable_objects.outbox import SnapshotOutbox
from tests.snapshots.edge_support import (SECRETS, Ledger, decide, edge, pushes_done, outbox_depth, rules_of, store_totals,
                                          wait_for)
from tests.snapshots.sink_receiver import Receiver

CRON = "*/5 * * * *"
RULES = rules_of()
NO_SHADOW = RULES[:2]


def metrics(url: str) -> dict[str, float]:
    req = urllib.request.Request(f"{url}/__tollgate/metrics",
                                 headers={"Authorization": f"Bearer {SECRETS['ADMIN_TOKEN']}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
        text = resp.read().decode()
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines() if line and not line.startswith("#")}


async def random_traffic(env, ledger: Ledger, clients: int, requests: int, seed: int,
                         virtual_ms: list[int] | None = None) -> None:
    """`requests` decisions in batches of 200 concurrent ones; with `virtual_ms` (the clock the
    buckets read, tests/snapshots: clock.use), 300 ms pass between batches, so how much the
    burst rule refills is the same on any machine, however fast it decides."""
    rng = random.Random(seed)
    names = [f"{i:04d}-{rng.getrandbits(64):016x}" for i in range(clients)]
    heavy = names[:10]
    calls = []
    for _ in range(requests):
        client = rng.choice(heavy) if rng.random() < 0.25 else rng.choice(names)
        rules = RULES if rng.random() < 0.7 else NO_SHADOW
        calls.append((client, rules, rng.choice((1, 1, 1, 2, 3))))
    for i in range(0, len(calls), 200):  # concurrent requests, many clients at once
        if virtual_ms is not None:
            virtual_ms[0] += 300
        await asyncio.gather(*(decide(env, ledger, c, r, cost) for c, r, cost in calls[i:i + 200]))
    for name in names:  # every client at least once
        await decide(env, ledger, name, NO_SHADOW)


async def settled(e) -> None:
    """Every bucket's alarm has run and confirmed its push to the outbox."""
    async def done():
        return await pushes_done(e)
    await wait_for(done, what="bucket alarms to push their snapshots")


def test_thousand_clients_random_traffic_then_cron_store_totals_are_exact(tmp_path):
    now = [clock.now_ms()]

    async def main():
        async with edge(tmp_path) as e:
            ledger = Ledger()
            await random_traffic(e.env, ledger, clients=1000, requests=3000, seed=7, virtual_ms=now)
            expected = ledger.expected()
            assert expected["burst"][2] > 0 and expected["daily"][3] > 0  # denials and shadow denials happened
            await settled(e)
            assert await outbox_depth(e.env) >= len(ledger.keys)
            await e.scheduled(CRON)
            assert store_totals(e.d1("USAGE_DB")) == expected
            assert await outbox_depth(e.env) == 0
            m = await asyncio.to_thread(metrics, e.url)
            assert m['tollgate_decisions_total{rule="burst",result="allowed"}'] == expected["burst"][0]
            assert m['tollgate_decisions_total{rule="burst",result="denied"}'] == expected["burst"][2]
            assert m['tollgate_decisions_total{rule="daily",result="shadow_denied"}'] == expected["daily"][3]
            assert m['tollgate_admitted_cost_total{rule="minute"}'] == expected["minute"][1]
            await e.scheduled(CRON)  # nothing new: nothing changes
            assert store_totals(e.d1("USAGE_DB")) == expected
    with clock.use(lambda: now[0]):
        asyncio.run(main())


def test_store_down_for_three_cron_runs_then_back_nothing_lost_nothing_twice(tmp_path):
    async def main():
        async with edge(tmp_path) as e:
            db = e.d1("USAGE_DB")
            ledger = Ledger()
            real_batch = db.batch

            async def down(statements):
                db.subrequests += 1
                raise RuntimeError("D1_ERROR: Network connection lost.")

            db.batch = down
            for run in range(3):  # traffic keeps coming while the store is down
                await random_traffic(e.env, ledger, clients=60, requests=150, seed=run)
                await settled(e)
                await e.scheduled(CRON)
                assert db.rows("SELECT COUNT(*) AS n FROM usage")[0]["n"] == 0
            waiting = await outbox_depth(e.env)
            assert waiting > 0
            db.batch = real_batch
            await e.scheduled(CRON)
            assert store_totals(db) == ledger.expected()
            assert await outbox_depth(e.env) == 0
            m = await asyncio.to_thread(metrics, e.url)
            assert m['tollgate_store_write_errors_total{store="d1"}'] == 3
            assert m["tollgate_flush_lag_seconds"] == 0
    asyncio.run(main())


def test_same_batch_delivered_twice_is_counted_once(tmp_path):
    """The store confirmed but the ack was lost (a crash between the two): the lease
    expires, the next run delivers the very same rows again, and they count once."""
    async def main():
        async with edge(tmp_path, vars={"FLUSH_LEASE_MS": "1000"}) as e:
            db = e.d1("USAGE_DB")
            ledger = Ledger()
            await random_traffic(e.env, ledger, clients=100, requests=300, seed=3)
            await settled(e)
            real_ack = SnapshotOutbox.ack

            async def lost_ack(self, lease_id):
                raise RuntimeError("connection reset before the ack arrived")

            SnapshotOutbox.ack = lost_ack
            try:
                await e.scheduled(CRON)
            finally:
                SnapshotOutbox.ack = real_ack
            first = store_totals(db)
            assert first == ledger.expected()
            writes_before = db.subrequests
            assert await outbox_depth(e.env) > 0  # still there, leased
            await e.scheduled(CRON)
            assert db.subrequests == writes_before  # leased: nothing to send yet
            later = clock.now_ms() + 1001
            with clock.use(lambda: later):  # the lease has expired
                await e.scheduled(CRON)
            assert db.subrequests > writes_before  # delivered a second time
            assert store_totals(db) == first == ledger.expected()
            assert await outbox_depth(e.env) == 0
    asyncio.run(main())


def test_a_bucket_touched_once_and_never_again_reaches_the_store(tmp_path):
    async def main():
        state = tmp_path / "state"
        ledger = Ledger()
        async with edge(tmp_path, vars={"SNAPSHOT_DELAY_MS": "600000"}, state=state) as e:
            await decide(e.env, ledger, "lonely-client", RULES, cost=3)
            assert e.alarms.pending()  # the push is scheduled, far in the future
        # The runtime stops (deploy, eviction, crash) long before the alarm is due; on
        # restart the persisted alarm fires (now due) and the change still gets out.
        async with edge(tmp_path, vars={"SNAPSHOT_DELAY_MS": "20"}, state=state) as e:
            for key in list(e.alarms.pending()):
                e.alarms.set(key, None, clock.now_ms())  # its time has come
            await settled(e)
            await e.scheduled(CRON)
            rows = e.d1("USAGE_DB").rows("SELECT client, rule, allowed, admitted FROM usage ORDER BY rule")
        assert [(r["client"], r["rule"], r["allowed"], r["admitted"]) for r in rows] == [
            ("lonely-client", "burst", 1, 3), ("lonely-client", "daily", 1, 3), ("lonely-client", "minute", 1, 3)]
    asyncio.run(main())


def test_http_sink_through_the_runtime_with_retries_and_signature(tmp_path):
    async def main():
        rx = Receiver(b"runtime-sink-secret")
        url = await rx.start()
        try:
            vars = {"SNAPSHOT_STORE": "http", "SNAPSHOT_SINK_URL": url, "SNAPSHOT_SINK_BACKOFF_MS": "5",
                    "SNAPSHOT_SINK_SECRET": "runtime-sink-secret"}
            async with edge(tmp_path, vars=vars) as e:
                ledger = Ledger()
                await random_traffic(e.env, ledger, clients=200, requests=500, seed=11)
                await settled(e)
                rx.fail_next = [502, 503]
                await e.scheduled(CRON)
                assert await outbox_depth(e.env) == 0
            assert [r["status"] for r in rx.requests] == [502, 503, 200]
            assert {k: v for k, v in rx.totals().items()} == ledger.expected()
        finally:
            await rx.stop()
    asyncio.run(main())
