"""Usage end to end, black box, on both runtimes: decisions over HTTP, each bucket's
alarm pushing its snapshot to the outbox, the metrics counting them, a cron flush
putting exact totals into D1, a second flush changing nothing, and the admin API
resetting a bucket (and refusing to restore one that still has its state).

Only what a user sees is read: HTTP answers, /__tollgate/metrics, the admin API.
On workerd the alarms run on real time, so SNAPSHOT_DELAY_MS is short and the test
polls (bounded) instead of sleeping through a window.
"""
from __future__ import annotations

import asyncio
import json
import random
import time

from tests.gateway.support import SECRETS, call, run_scenario, scheduled_path

CRON = "*/5 * * * *"
TOLLGATE = {"identity": ["header:x-api-key"],
            "rules": [{"name": "burst", "limit": "5/minute", "burst": 5},
                      {"name": "daily", "limit": "3/day", "algorithm": "fixed_window", "shadow": True}]}
VARS = {"SNAPSHOT_DELAY_MS": "100", "OUTBOX_SHARDS": "2", "SNAPSHOT_STORE": "d1"}
ADMIN = {"Authorization": f"Bearer {SECRETS['ADMIN_TOKEN']}"}
ALLOW = {"Authorization": f"Bearer {SECRETS['ALLOW_TOKEN']}"}


async def metrics(http, url: str) -> dict[str, float]:
    status, _, body = await call(http, "GET", f"{url}/__tollgate/metrics", headers=ADMIN)
    assert status == 200, body
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in body.decode().splitlines() if line and not line.startswith("#")}


async def eventually(probe, what: str, timeout_s: float = 30.0):
    """Poll `probe()` until it returns a truthy value (bounded); the last value otherwise."""
    deadline = time.monotonic() + timeout_s
    while True:
        got = await probe()
        if got or time.monotonic() > deadline:
            assert got, f"timed out waiting for {what}"
            return got
        await asyncio.sleep(0.1)


def expected_counts(answers: list[tuple[str, int]]) -> dict[str, float]:
    """What the burst rule's metrics must say, from the answers the clients got."""
    return {'{rule="burst",result="allowed"}': sum(1 for _, s in answers if s == 200),
            '{rule="burst",result="denied"}': sum(1 for _, s in answers if s == 429)}


def _series(m: dict[str, float], metric: str) -> dict[str, float]:
    return {k[len(metric):]: v for k, v in m.items() if k.startswith(metric + "{")}


def test_decisions_reach_metrics_then_d1_exactly_and_admin_reset(tmp_path, runtime):
    rng = random.Random(3)
    clients = [f"client-{i}" for i in range(12)]
    plan = [rng.choice(clients) for _ in range(90)]

    async def scenario(edge, origin, http):
        answers = []
        for i in range(0, len(plan), 15):   # concurrent, many clients at once
            batch = plan[i:i + 15]
            got = await asyncio.gather(*(call(http, "GET", f"{edge.url}/__tollgate/allow",
                                              headers={**ALLOW, "X-Api-Key": c}) for c in batch))
            answers += [(c, status) for c, (status, _, _) in zip(batch, got)]
        want = expected_counts(answers)
        assert want['{rule="burst",result="denied"}'] > 0, "the plan must hit the burst limit"

        def decided(m):
            return {k: m.get(f"tollgate_decisions_total{k}", 0) for k in want}
        await eventually(lambda: _matches(http, edge.url, decided, want), "snapshots in the outbox")

        async def flush():
            status, _, body = await call(http, "GET", f"{edge.url}{scheduled_path()}?cron={CRON.replace(' ', '+')}")
            assert status == 200, body

        def stored(m):
            return {k: m.get(f"tollgate_store_decisions_total{k}", 0) for k in want}
        await flush()
        await eventually(lambda: _matches(http, edge.url, stored, want), "the flush to reach D1")
        await flush()   # nothing new: nothing changes
        m = await metrics(http, edge.url)
        assert stored(m) == want and decided(m) == want
        # every rule, the shadow one included: what D1 holds is what the outbox counted
        assert _series(m, "tollgate_store_decisions_total") == _series(m, "tollgate_decisions_total")
        assert _series(m, "tollgate_decisions_total")['{rule="daily",result="shadow_denied"}'] > 0
        assert all(v == 0 for k, v in m.items() if k.startswith("tollgate_outbox_entries"))

        # DELETE resets the limiter (full burst again) and keeps the counters the store reconciles
        # against; restore refuses a bucket that still has its state, saying why.
        heavy = max(set(plan), key=plan.count)
        view = f"{edge.url}/__tollgate/admin/clients/key:{heavy}"
        status, _, body = await call(http, "GET", view, headers=ADMIN)
        before = json.loads(body)["rules"]
        assert before["burst"]["allowed"] == sum(1 for c, s in answers if c == heavy and s == 200) > 0
        status, _, _ = await call(http, "DELETE", view, headers=ADMIN)
        assert status == 200
        status, _, body = await call(http, "GET", view, headers=ADMIN)
        after = json.loads(body)["rules"]
        assert after["burst"]["remaining"] == 5 and after["burst"]["allowed"] == before["burst"]["allowed"], after
        status, headers, body = await call(http, "POST", f"{view}/restore", headers=ADMIN)
        assert status == 409 and headers["Content-Type"].startswith("application/problem+json"), body

    run_scenario(tmp_path, TOLLGATE, scenario, vars=VARS, d1=True)


async def _matches(http, url, view, want) -> bool:
    return view(await metrics(http, url)) == want
