"""The deny cache over real HTTP, on both runtimes (issue 13): once the bucket denied a
client, its repeats are answered by the isolate, with the same 429 and headers counting
down, and they cost no bucket call. Observed through the admin GET: the bucket's row
`version` grows by one per change it saw, so 25 repeats answered by the bucket would add
25, while answered by the isolate they reach it as one report (the admin read flushes it)."""
from __future__ import annotations

import json

from tests.gateway.support import SECRETS, call, problem_of, rule_row, run_scenario

TOLLGATE = {"identity": ["header:x-api-key"],
            "rules": [{"name": "daily", "limit": "5/day", "algorithm": "fixed_window"}]}
ADMIN = {"Authorization": f"Bearer {SECRETS['ADMIN_TOKEN']}"}
ALLOW = {"Authorization": f"Bearer {SECRETS['ALLOW_TOKEN']}"}


def test_a_denied_clients_repeats_are_answered_by_the_isolate_without_a_bucket_call(tmp_path, runtime):
    async def scenario(edge, origin, http):
        url, who = f"{edge.url}/v1/items", {"X-Api-Key": "alice"}
        assert [(await call(http, "GET", url, headers=who))[0] for _ in range(5)] == [201] * 5
        first = await call(http, "GET", url, headers=who)
        assert first[0] == 429
        row = await rule_row(http, edge.url, "alice", "daily")
        assert (row["allowed"], row["denied"], row["version"]) == (5, 1, 6)
        repeats = [await call(http, "GET", url, headers=who) for _ in range(25)]
        for status, headers, body in repeats:
            doc = problem_of(429, headers, body)
            assert doc["rule"] == "daily" and doc["type"].endswith("#quota-exceeded")
            assert headers["RateLimit-Policy"] == first[1]["RateLimit-Policy"]
            assert headers["RateLimit"].startswith('"daily";r=0;t=')
        waits = [int(first[1]["Retry-After"])] + [int(h["Retry-After"]) for _, h, _ in repeats]
        assert waits == sorted(waits, reverse=True) and waits[0] - waits[-1] <= 5   # counting down, never up
        assert origin.count() == 5
        row = await rule_row(http, edge.url, "alice", "daily")
        assert (row["allowed"], row["denied"]) == (5, 26)   # every denial counted ...
        assert row["version"] == 7                          # ... from one report, not 25 decisions
        # a reset through this isolate's admin API applies at once
        status, _, _ = await call(http, "DELETE", f"{edge.url}/__tollgate/admin/clients/alice", headers=ADMIN)
        assert status == 200
        assert (await call(http, "GET", url, headers=who))[0] == 201
    run_scenario(tmp_path, TOLLGATE, scenario)


def test_allow_answers_repeats_from_the_cache_and_other_clients_are_asked(tmp_path, runtime):
    async def scenario(edge, origin, http):
        url = f"{edge.url}/__tollgate/allow/v1/items"
        bob = {"X-Api-Key": "bob", "Tollgate-Deny-Status": "403"}
        assert [(await call(http, "GET", url, headers=bob))[0] for _ in range(5)] == [200] * 5
        answers = [await call(http, "GET", url, headers=bob) for _ in range(10)]
        assert {s for s, _, _ in answers} == {403}
        assert all(json.loads(h["Tollgate-Problem"])["status"] == 429 and json.loads(b)["allowed"] is False
                   for _, h, b in answers)
        assert (await call(http, "GET", url, headers={"X-Api-Key": "carol"}))[0] == 200
        cost = {"X-Api-Key": "dave", "Tollgate-Allow-Token": SECRETS["ALLOW_TOKEN"], "Tollgate-Cost": "5"}
        assert (await call(http, "GET", url, headers=cost))[0] == 200
        assert (await call(http, "GET", url, headers=cost))[0] == 429       # cached for cost 5 ...
        assert (await call(http, "GET", url, headers={"X-Api-Key": "dave"}))[0] == 429   # ... cost 1 asked: 6 > 5
        row = await rule_row(http, edge.url, "bob", "daily")
        # 5 admissions and one report: the fifth left the day at 0, so all 10 were answered here
        assert (row["allowed"], row["denied"], row["version"]) == (5, 10, 6), row
    run_scenario(tmp_path, TOLLGATE, scenario, with_origin=False)
