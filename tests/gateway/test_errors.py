"""Every bad input or failure answers its status with problem+json, never a traceback."""
from __future__ import annotations

import json

import pytest

from tests.conftest import free_port
from tests.gateway.support import SECRETS, call, problem_of, run_scenario

TOLLGATE = {"identity": ["header:x-api-key"],
            "rules": [{"name": "daily", "limit": "50/day", "algorithm": "fixed_window"}]}
ADMIN = {"Authorization": f"Bearer {SECRETS['ADMIN_TOKEN']}"}
ALLOW = {"Tollgate-Allow-Token": SECRETS["ALLOW_TOKEN"]}


def run(tmp_path, scenario, tollgate=TOLLGATE, vars=None, origin_url=None):
    run_scenario(tmp_path, tollgate, scenario, vars=vars, origin_url=origin_url)


def test_identity_missing_401_and_malformed_400(tmp_path):
    async def scenario(edge, origin, http):
        status, headers, body = await call(http, "GET", f"{edge.url}/v1/x")
        assert "x-api-key" in problem_of(401, headers, body)["detail"]
        for bad in ("k" * 300, "two words"):
            status, headers, body = await call(http, "GET", f"{edge.url}/v1/x", headers={"X-Api-Key": bad})
            assert "x-api-key" in problem_of(400, headers, body)["detail"]
        assert origin.count() == 0
    run(tmp_path, scenario)


def test_cost_needs_the_allow_token_and_a_sane_number(tmp_path):
    async def scenario(edge, origin, http):
        url, who = f"{edge.url}/__tollgate/allow", {"X-Api-Key": "alice"}
        status, headers, body = await call(http, "GET", url, headers={**who, "Tollgate-Cost": "3"})
        problem_of(403, headers, body)
        status, headers, body = await call(http, "GET", f"{url}?cost=3",
                                           headers={**who, "Tollgate-Allow-Token": "wrong"})
        problem_of(403, headers, body)
        for bad in ("abc", "0", "-1", "2.5", "1001", "٣"):
            status, headers, body = await call(http, "GET", url, headers={**who, **ALLOW, "Tollgate-Cost": bad})
            assert "cost" in problem_of(400, headers, body)["detail"], bad
        status, headers, body = await call(http, "GET", f"{url}?cost=7", headers={**who, **ALLOW})
        assert status == 200 and headers["RateLimit"].startswith('"daily";r=43;')
    run(tmp_path, scenario)


def test_unknown_route_404_and_wrong_method_405(tmp_path):
    async def scenario(edge, origin, http):
        status, headers, body = await call(http, "GET", f"{edge.url}/__tollgate/nope")
        problem_of(404, headers, body)
        status, headers, body = await call(http, "POST", f"{edge.url}/__tollgate/health")
        problem_of(405, headers, body)
        assert headers["Allow"] == "GET, HEAD"
        status, headers, body = await call(http, "PUT", f"{edge.url}/__tollgate/admin/clients/alice", headers=ADMIN)
        problem_of(405, headers, body)
        assert headers["Allow"] == "GET, DELETE"
        status, headers, body = await call(http, "GET", f"{edge.url}/__tollgate/health")
        assert status == 200 and json.loads(body) == {"status": "ok", "mode": "gateway", "rules": 1}
    run(tmp_path, scenario)


def test_origin_unreachable_502(tmp_path):
    async def scenario(edge, origin, http):
        status, headers, body = await call(http, "GET", f"{edge.url}/v1/x", headers={"X-Api-Key": "alice"})
        problem_of(502, headers, body)
        assert headers["RateLimit"].startswith('"daily";r=49;'), "the decision still shows"
    run(tmp_path, scenario, origin_url=f"http://127.0.0.1:{free_port()}")


def test_origin_timeout_504(tmp_path):
    async def scenario(edge, origin, http):
        status, headers, body = await call(http, "GET", f"{edge.url}/slow/5000", headers={"X-Api-Key": "alice"})
        assert "0.3 s" in problem_of(504, headers, body)["detail"]
        status, _, _ = await call(http, "GET", f"{edge.url}/slow/10", headers={"X-Api-Key": "alice"})
        assert status == 201
    run(tmp_path, scenario, vars={"ORIGIN_TIMEOUT_MS": "300"})


def test_misconfiguration_fails_closed_503_showing_the_errors_only_to_the_operator(tmp_path):
    broken = {"identity": ["header:x-api-key"],
              "rules": [{"name": "daily", "limit": "50/dya"}],
              "overrides": {"secret-partner-key": {"nope": "unlimited"}}}

    async def scenario(edge, origin, http):
        for path in ("/v1/x", "/__tollgate/health", "/__tollgate/allow"):
            status, headers, body = await call(http, "GET", f"{edge.url}{path}", headers={"X-Api-Key": "alice"})
            doc = problem_of(503, headers, body)
            assert doc["title"] == "Tollgate is misconfigured" and "errors" not in doc
            assert b"secret-partner-key" not in body
        status, headers, body = await call(http, "GET", f"{edge.url}/v1/x", headers=ADMIN)
        errors = problem_of(503, headers, body)["errors"]
        assert any(e.startswith("TOLLGATE.rules[0].limit:") for e in errors), errors
        assert any("ORIGIN_TIMEOUT_MS" in e for e in errors), errors
        assert origin.count() == 0
    run(tmp_path, scenario, tollgate=broken, vars={"ORIGIN_TIMEOUT_MS": "soon"})
