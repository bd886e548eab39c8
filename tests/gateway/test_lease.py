"""Lease mode over real HTTP, on both runtimes (issue 13): a client's requests under a
`mode = "lease"` rule are decided from leases its bucket charged, so the bucket sees a few
lease calls instead of one decision per request (its row `version` grows by one per change),
the usage it counts is exactly what was admitted (the admin read flushes the isolate's
report), and once the limit is reached the client gets the usual 429."""
from __future__ import annotations

import time

from tests.gateway.support import call, problem_of, rule_row, run_scenario


def lease_config(limit: str, burst: int) -> dict:
    return {"identity": ["header:x-api-key"],
            "rules": [{"name": "minute", "limit": limit, "burst": burst, "mode": "lease"}]}


def test_a_leased_clients_requests_are_decided_without_a_bucket_decision_each(tmp_path, runtime):
    async def scenario(edge, origin, http):
        url, who = f"{edge.url}/v1/items", {"X-Api-Key": "alice"}
        statuses = [(await call(http, "GET", url, headers=who))[0] for _ in range(300)]
        assert statuses == [201] * 300
        assert origin.count() == 300
        row = await rule_row(http, edge.url, "alice", "minute")
        assert (row["allowed"], row["admitted"]) == (300, 300)     # usage: what was admitted, not granted
        assert row["version"] < 150, row                           # far fewer changes than 300 decisions
    run_scenario(tmp_path, lease_config("60000/minute", 6000), scenario)


def test_a_leased_client_at_its_limit_gets_429_within_the_stated_overshoot(tmp_path, runtime):
    async def scenario(edge, origin, http):
        url, who = f"{edge.url}/v1/items", {"X-Api-Key": "bob"}
        started, answers = time.monotonic(), []
        while len(answers) < 600 and (not answers or answers[-1][0] != 429):
            answers.append(await call(http, "GET", url, headers=who))
        elapsed = time.monotonic() - started
        admitted = sum(1 for s, _, _ in answers if s == 201)
        # burst 200 plus the refill of 600/minute while the test ran, plus 1% of the limit
        assert 150 <= admitted <= 200 + 10 * elapsed + 6, (admitted, elapsed)
        status, headers, body = answers[-1]
        assert status == 429 and problem_of(429, headers, body)["rule"] == "minute"
        assert int(headers["Retry-After"]) >= 1 and headers["RateLimit"].startswith('"minute";r=0;')
        row = await rule_row(http, edge.url, "bob", "minute")
        assert row["admitted"] == admitted
    run_scenario(tmp_path, lease_config("600/minute", 200), scenario)
