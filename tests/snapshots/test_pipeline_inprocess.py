"""The whole usage pipeline in one process (fake DO namespaces on real SQLite, D1 on
sqlite3): random traffic on 1,000 buckets, alarms, outbox, cron flush. The store's
totals must equal what the buckets answered, exactly. The same scenarios run through
the local runtime in test_pipeline_runtime.py; this one is the fast regression."""
from __future__ import annotations

import asyncio
import json
import random
from types import SimpleNamespace

from src.tollgate import clock
from durable_objects.bucket import ClientBucket
from durable_objects.outbox import SnapshotOutbox
from src.tollgate.algorithms import Limit
from src.tollgate.rules import Match, Rule
from src.tollgate.usage import ACCOUNTING_PERIOD_MS
from src.tollgate.wire import decode_decision, encode_decide
from tests.snapshots.fake_d1 import FakeD1
from tests.state.fakes import FakeNamespace
from worker.scheduled import flush

ALL = Match(None, None)
RULES = (Rule("burst", Limit("gcra", 5, 1000, 5), ALL),
         Rule("minute", Limit("fixed_window", 20, 60_000, 20), ALL),
         Rule("daily", Limit("fixed_window", 12, 86_400_000, 12), ALL, shadow=True))


class Expected:
    def __init__(self) -> None:
        self.t: dict[str, list[int]] = {r.name: [0, 0, 0, 0] for r in RULES}

    def add(self, decision, cost: int) -> None:
        if decision.allowed:
            for res in decision.results:
                if res.shadow and not res.allowed:
                    self.t[res.name][3] += 1
                else:
                    self.t[res.name][0] += 1
                    self.t[res.name][1] += cost
        else:
            self.t[decision.denied_by][2] += 1

    def totals(self) -> dict[str, tuple]:
        return {k: tuple(v) for k, v in self.t.items() if any(v)}


def make_env():
    env = SimpleNamespace(OUTBOX_SHARDS="8", SNAPSHOT_DELAY_MS="10")
    env.OUTBOX = FakeNamespace(SnapshotOutbox, env)
    env.BUCKETS = FakeNamespace(ClientBucket, env)
    env.USAGE_DB = FakeD1()
    return env


async def fire_alarms(env) -> int:
    fired = 0
    for bucket in list(env.BUCKETS.objects.values()):
        if bucket.ctx.storage.alarm is not None:
            bucket.ctx.storage.alarm = None
            await bucket.alarm()
            fired += 1
    return fired


def test_thousand_clients_random_traffic_then_cron_totals_are_exact():
    rng = random.Random(4)
    now = [1_900_000_000_000]
    expected = Expected()
    env = make_env()

    async def traffic():
        with clock.use(lambda: now[0]):
            for step in range(6000):
                client = f"client-{rng.randrange(1000):04d}"
                rules = RULES if rng.random() < 0.8 else RULES[:2]
                cost = rng.choice((1, 1, 1, 2, 5))
                d = decode_decision(await env.BUCKETS.getByName(client).decide(encode_decide(rules, cost)))
                expected.add(d, cost)
                now[0] += rng.randrange(0, 40)
                if step == 3000:  # half-way: some alarms, and an hour boundary for some buckets
                    await fire_alarms(env)
                    now[0] += ACCOUNTING_PERIOD_MS
            await fire_alarms(env)

    asyncio.run(traffic())
    assert sum(v[2] for v in expected.t.values()) > 0 and expected.t["daily"][3] > 0  # denials of both kinds
    rep = asyncio.run(flush(env))
    assert rep.complete
    assert env.USAGE_DB.totals() == expected.totals()
    assert all(b.pending() == [] for b in env.BUCKETS.objects.values())
    again = asyncio.run(flush(env))
    assert again.rows_written == 0 and env.USAGE_DB.totals() == expected.totals()
