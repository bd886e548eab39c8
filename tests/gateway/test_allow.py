"""/__tollgate/allow: the decision alone, for Envoy ext_authz, nginx auth_request
and as a pure decision service; the rules match the original method and path."""
from __future__ import annotations

import json

from tests.gateway.support import SECRETS, call, problem_of, run_scenario

TOLLGATE = {"identity": ["header:x-api-key"],
            "rules": [{"name": "search", "limit": "3/day", "algorithm": "fixed_window",
                       "match": {"methods": ["GET"], "paths": ["/v1/search*"]}}]}
ALLOW = {"Tollgate-Allow-Token": SECRETS["ALLOW_TOKEN"]}


def run(tmp_path, scenario, with_origin=True):
    run_scenario(tmp_path, TOLLGATE, scenario, with_origin=with_origin)


def test_envoy_path_prefix_and_nginx_original_uri_decide_the_original_request(tmp_path):
    async def scenario(edge, origin, http):
        who = {"X-Api-Key": "alice"}
        # Envoy ext_authz: path_prefix + original path, original method
        status, headers, body = await call(http, "GET", f"{edge.url}/__tollgate/allow/v1/search?q=cats&cost=9",
                                           headers=who)
        assert status == 200 and json.loads(body) == {"allowed": True, "rule": None, "retry_after": 0}
        assert headers["RateLimit"].startswith('"search";r=2;'), "?cost there belongs to the original request"
        # a POST to the same path matches no rule (methods = GET)
        status, headers, _ = await call(http, "POST", f"{edge.url}/__tollgate/allow/v1/search", headers=who)
        assert status == 200 and "RateLimit" not in headers
        # nginx auth_request: the subrequest carries the original URI and method
        nginx = {**who, "X-Original-URI": "/v1/search/deep?x=1", "X-Original-Method": "GET"}
        assert (await call(http, "GET", f"{edge.url}/__tollgate/allow", headers=nginx))[0] == 200
        assert (await call(http, "GET", f"{edge.url}/__tollgate/allow", headers=nginx))[0] == 200
        status, headers, body = await call(http, "GET", f"{edge.url}/__tollgate/allow", headers=nginx)
        assert status == 429 and int(headers["Retry-After"]) >= 1 and headers["RateLimit"].startswith('"search";r=0;')
        doc = problem_of(429, headers, body)     # the gateway path's own 429 document, plus `allowed`
        assert doc["allowed"] is False and doc["rule"] == "search" and doc["retry_after"] >= 1
        assert doc["type"] == "https://iana.org/assignments/http-problem-types#quota-exceeded"
        # nginx treats only 401/403 as a denial: the caller may ask for 403 instead of 429
        status, headers, body = await call(http, "GET", f"{edge.url}/__tollgate/allow",
                                           headers={**nginx, "Tollgate-Deny-Status": "403"})
        assert status == 403 and problem_of(403, headers, body)["rule"] == "search"
        status, headers, body = await call(http, "GET", f"{edge.url}/__tollgate/allow",
                                           headers={**nginx, "X-Original-Method": "G E T"})
        problem_of(400, headers, body)
        assert origin.count() == 0, "the decision service never contacts the origin"
    run(tmp_path, scenario)


def test_cost_with_the_allow_token(tmp_path):
    async def scenario(edge, origin, http):
        url = f"{edge.url}/__tollgate/allow"
        who = {"X-Api-Key": "bob", "X-Original-URI": "/v1/search"}
        status, headers, _ = await call(http, "GET", url, headers={**who, **ALLOW, "Tollgate-Cost": "2"})
        assert status == 200 and headers["RateLimit"].startswith('"search";r=1;')
        status, headers, body = await call(http, "GET", url, headers={**who, **ALLOW, "Tollgate-Cost": "2"})
        assert status == 429 and json.loads(body)["rule"] == "search"
        status, headers, _ = await call(http, "GET", url, headers=who)       # the denial took nothing
        assert status == 200 and headers["RateLimit"].startswith('"search";r=0;')
        # a cost no window could ever hold is a bad request, not an endless 429
        status, headers, body = await call(http, "GET", url, headers={**who, **ALLOW, "Tollgate-Cost": "4"})
        assert problem_of(400, headers, body)["rule"] == "search"
        # Authorization is the client's (a bearer identity), never the caller's token
        status, headers, body = await call(http, "GET", url, headers={
            **who, "Authorization": f"Bearer {SECRETS['ALLOW_TOKEN']}", "Tollgate-Cost": "1"})
        problem_of(403, headers, body)
    run(tmp_path, scenario)


def test_without_origin_every_path_is_a_decision(tmp_path):
    async def scenario(edge, origin, http):
        who = {"X-Api-Key": "carol"}
        statuses = [(await call(http, "GET", f"{edge.url}/v1/search?q={i}", headers=who))[0] for i in range(4)]
        assert statuses == [200, 200, 200, 429]
        status, headers, body = await call(http, "GET", f"{edge.url}/elsewhere", headers=who)
        assert status == 200 and json.loads(body)["allowed"] is True
        status, _, body = await call(http, "GET", f"{edge.url}/__tollgate/health")
        assert json.loads(body)["mode"] == "decision-service"
        assert origin.count() == 0
    run(tmp_path, scenario, with_origin=False)
