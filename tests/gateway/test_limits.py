"""Per-client limits through the gateway, over real HTTP against the local runtime."""
from __future__ import annotations

import asyncio
import json
import re

import aiohttp
import pytest

from tests.gateway.support import SECRETS, call, problem_of, run_scenario

TOLLGATE = {
    "identity": ["header:x-api-key"],
    "rules": [
        {"name": "daily", "limit": "5/day", "algorithm": "fixed_window", "match": {"paths": ["/v1/limited*"]}},
        {"name": "bulk", "limit": "50/day", "algorithm": "fixed_window", "match": {"paths": ["/v1/bulk*"]}},
        {"name": "costly", "limit": "10/day", "algorithm": "fixed_window", "match": {"paths": ["/v1/costly*"]}},
        {"name": "guarded", "limit": "50/day", "on_error": "closed", "match": {"paths": ["/v1/guarded*"]}},
    ],
    "costs": {"POST /v1/costly": 5},
    "overrides": {"mallory": {"daily": "blocked"}},
}
ADMIN = {"Authorization": f"Bearer {SECRETS['ADMIN_TOKEN']}"}


def run(tmp_path, scenario):
    """Serve the repo's Worker with TOLLGATE against a recording origin and run `scenario(edge, origin, http)`."""
    run_scenario(tmp_path, TOLLGATE, scenario)


def test_a_client_gets_its_limit_then_429_and_others_are_unaffected(tmp_path):
    async def scenario(edge, origin, http):
        statuses = []
        for _ in range(6):
            status, headers, body = await call(http, "GET", f"{edge.url}/v1/limited", headers={"X-Api-Key": "alice"})
            statuses.append(status)
            if status == 201:
                assert re.fullmatch(r'"daily";r=\d+;t=\d+', headers["RateLimit"]), headers["RateLimit"]
                assert headers["RateLimit-Policy"] == '"daily";q=5;w=86400'
        assert statuses == [201] * 5 + [429]
        assert origin.count() == 5, "the denied request never reached the origin"
        doc = problem_of(429, headers, body)
        assert doc["type"].endswith("#quota-exceeded") and doc["rule"] == "daily"
        assert int(headers["Retry-After"]) >= 1 and headers["RateLimit"].startswith('"daily";r=0;')
        # another client has its own bucket; alice stays denied
        status, _, _ = await call(http, "GET", f"{edge.url}/v1/limited", headers={"X-Api-Key": "bob"})
        assert status == 201
        status, _, _ = await call(http, "GET", f"{edge.url}/v1/limited", headers={"X-Api-Key": "alice"})
        assert status == 429
    run(tmp_path, scenario)


def test_200_concurrent_requests_for_one_client_admit_exactly_50(tmp_path):
    async def scenario(edge, origin, http):
        async def one(i):
            status, _, _ = await call(http, "POST", f"{edge.url}/v1/bulk/{i}", data=b"x",
                                      headers={"X-Api-Key": "carol"})
            return status
        connector_http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200))
        async with connector_http:
            statuses = await asyncio.gather(*(one(i) for i in range(200)))
        assert statuses.count(201) == 50 and statuses.count(429) == 150, sorted(set(statuses))
        assert origin.count() == 50
        status, _, body = await call(http, "GET", f"{edge.url}/__tollgate/admin/clients/carol", headers=ADMIN)
        assert status == 200
        rule = json.loads(body)["rules"]["bulk"]
        assert (rule["allowed"], rule["denied"]) == (50, 150)
    run(tmp_path, scenario)


def test_route_cost_counts_against_the_quota(tmp_path):
    async def scenario(edge, origin, http):
        url, who = f"{edge.url}/v1/costly", {"X-Api-Key": "dave"}
        assert (await call(http, "GET", url, headers=who))[0] == 201      # 1 of 10
        assert (await call(http, "POST", url, headers=who))[0] == 201     # 6 of 10
        status, headers, _ = await call(http, "POST", url, headers=who)   # 11 > 10
        assert status == 429 and headers["RateLimit"].startswith('"costly";r=4;')
        assert (await call(http, "GET", url, headers=who))[0] == 201      # 7 of 10: the denial took nothing
    run(tmp_path, scenario)


def test_route_cost_above_a_rules_capacity_is_a_config_error_not_a_400_per_request(tmp_path):
    tollgate = {"identity": ["header:x-api-key"],
                "rules": [{"name": "burst", "limit": "10/minute", "burst": 3}],
                "costs": {"POST /v1/export": 5}}

    async def scenario(edge, origin, http):
        for method in ("POST", "GET"):     # the whole config is refused: nothing forwarded, fail closed
            status, headers, body = await call(http, method, f"{edge.url}/v1/export", headers={"X-Api-Key": "fay"})
            assert problem_of(503, headers, body)["title"] == "Tollgate is misconfigured"
        status, headers, body = await call(http, "GET", f"{edge.url}/v1/export", headers=ADMIN)
        assert ('TOLLGATE.costs."POST /v1/export": cost 5 exceeds rule "burst", which admits at most 3'
                in "\n".join(problem_of(503, headers, body)["errors"]))
        assert origin.count() == 0
    run_scenario(tmp_path, tollgate, scenario)


def test_unmatched_path_is_forwarded_without_asking_a_bucket(tmp_path):
    async def scenario(edge, origin, http):
        status, headers, _ = await call(http, "GET", f"{edge.url}/public/page", headers={"X-Api-Key": "erin"})
        assert status == 201 and "RateLimit" not in headers and "Tollgate-Unchecked" not in headers
        _, _, body = await call(http, "GET", f"{edge.url}/__tollgate/admin/clients/erin", headers=ADMIN)
        assert all(r.get("state") is None for r in json.loads(body)["rules"].values()), "no bucket state written"
    run(tmp_path, scenario)


def test_blocked_override_answers_403_before_any_limit(tmp_path):
    async def scenario(edge, origin, http):
        status, headers, body = await call(http, "GET", f"{edge.url}/public/page", headers={"X-Api-Key": "mallory"})
        assert problem_of(403, headers, body)["rule"] == "daily"
        assert origin.count() == 0
    run(tmp_path, scenario)


class _Unreachable:
    """A Durable Object namespace whose objects cannot be reached (an overloaded or
    broken object: the stub call raises, as workerd's does)."""

    def getByName(self, name):
        return self

    async def decide(self, payload):
        raise RuntimeError("Durable Object is overloaded")


@pytest.mark.local_only("replaces the BUCKETS binding in-process with one that fails; workerd's bindings "
                        "cannot be swapped from outside")
def test_unreachable_bucket_fails_open_or_closed_per_rule_and_is_counted(tmp_path):
    async def scenario(edge, origin, http):
        edge.env.BUCKETS = _Unreachable()
        who = {"X-Api-Key": "frank"}
        status, headers, _ = await call(http, "GET", f"{edge.url}/v1/limited", headers=who)
        assert status == 201 and headers["Tollgate-Unchecked"] == "bucket-unavailable"
        assert ("tollgate-unchecked", "bucket-unavailable") in [tuple(h) for h in origin.received[-1]["headers"]]
        status, headers, body = await call(http, "GET", f"{edge.url}/v1/guarded", headers=who)
        assert problem_of(503, headers, body)["rule"] == "guarded" and headers["Retry-After"] == "1"
        status, headers, body = await call(http, "GET", f"{edge.url}/__tollgate/allow",
                                           headers={**who, "X-Original-URI": "/v1/guarded/x"})
        assert problem_of(503, headers, body)["rule"] == "guarded"
        assert origin.count() == 1
        # the metrics hook counted them durably (in the outbox shards, via waitUntil)
        want = {'tollgate_bucket_errors_total{resolution="open"} 1', 'tollgate_bucket_errors_total{resolution="closed"} 2'}
        for _ in range(100):
            _, _, text = await call(http, "GET", f"{edge.url}/__tollgate/metrics", headers=ADMIN)
            if want <= set(text.decode().splitlines()):
                break
            await asyncio.sleep(0.05)
        assert want <= set(text.decode().splitlines()), text.decode()
    run(tmp_path, scenario)


def test_an_encoded_or_dotted_path_cannot_step_around_a_path_rule(tmp_path):
    from yarl import URL

    async def scenario(edge, origin, http):
        for raw in ("/v1/%6Cimited", "/public/../v1/limited", "/v1/x/%2E%2E/limited"):
            status, headers, _ = await call(http, "GET", URL(f"{edge.url}{raw}", encoded=True),
                                            headers={"X-Api-Key": "hank"})
            assert status == 201 and headers["RateLimit"].startswith('"daily";'), (raw, dict(headers))
    run(tmp_path, scenario)


def test_partition_key_tells_clients_apart_without_revealing_their_keys(tmp_path):
    async def scenario(edge, origin, http):
        def pks(headers):
            found = {name: re.findall(r";pk=(:[A-Za-z0-9+/=]+:)", headers[name])
                     for name in ("RateLimit", "RateLimit-Policy")}
            assert len(set(found["RateLimit"] + found["RateLimit-Policy"])) == 1, found
            return found["RateLimit"][0]
        _, first, _ = await call(http, "GET", f"{edge.url}/v1/limited", headers={"X-Api-Key": "alice-secret-key"})
        _, again, _ = await call(http, "GET", f"{edge.url}/v1/limited", headers={"X-Api-Key": "alice-secret-key"})
        _, other, _ = await call(http, "GET", f"{edge.url}/v1/limited", headers={"X-Api-Key": "bob"})
        assert pks(first) == pks(again) != pks(other)
        assert re.fullmatch(r'"daily";r=3;t=\d+;pk=:[A-Za-z0-9+/]{16}:', again["RateLimit"])
        assert "alice" not in again["RateLimit"] + again["RateLimit-Policy"]
    run_scenario(tmp_path, {**TOLLGATE, "partition_key": True}, scenario)
