"""Real nginx and real Caddy, each with its shipped configuration, in front of a
recording origin and asking the repo's Worker (local runtime) for each request's
decision: what the end client receives, field by field, allowed and denied."""
from __future__ import annotations

from typing import Iterator

import pytest

from tests.conftest import free_port
from tests.gateway.support import SECRETS
from tests.integrations.conftest import QUOTA_EXCEEDED, fetch
from tests.integrations.gateways import LAUNCHERS
from tests.integrations.programs import Program


@pytest.fixture(scope="module", params=sorted(LAUNCHERS))
def gateway(request, tmp_path_factory: pytest.TempPathFactory, decision_service, origin) -> Iterator[Program]:
    folder = tmp_path_factory.mktemp(request.param)
    server = LAUNCHERS[request.param](folder, decision_service.url, origin.url)
    server.name = request.param
    with server:
        yield server


def key(gateway: Program, who: str) -> dict[str, str]:
    """An API key of its own per gateway: both share one Tollgate."""
    return {"X-Api-Key": f"{who}-{gateway.name}"}


def test_admitted_request_reaches_the_origin_with_method_uri_and_identity(gateway, origin):
    before = origin.count()
    got = fetch(gateway.url, "PUT", "/v1/items/7?q=a%20b&x=1", key(gateway, "alice"), b'{"n": 1}')
    assert got.status == 201, got
    assert origin.count() == before + 1
    seen = origin.received[before]
    assert (seen["method"], seen["path"], seen["query"]) == ("PUT", "/v1/items/7", "q=a%20b&x=1")
    assert ("x-api-key", f"alice-{gateway.name}") in seen["headers"]
    assert got.json()["body_b64"] == "eyJuIjogMX0="                      # the body went through
    assert got.headers["X-Origin"] == "test-origin"
    assert got.headers.get_all("Set-Cookie") == ["a=1; Path=/", "b=2; Path=/"]
    assert got.headers["RateLimit-Policy"] == '"per-client";q=10;w=600'
    assert got.headers["RateLimit"] == '"per-client";r=9;t=60'
    assert got.headers["Retry-After"] is None


def test_denied_request_gets_tollgates_429_and_never_reaches_the_origin(gateway, origin):
    for _ in range(2):
        assert fetch(gateway.url, "POST", "/v1/orders", key(gateway, "bob"), b"{}").status == 201
    before = origin.count()
    got = fetch(gateway.url, "POST", "/v1/orders", key(gateway, "bob"), b"{}")
    assert origin.count() == before
    assert got.status == 429
    assert got.headers["Content-Type"] == "application/problem+json"
    assert got.headers["Retry-After"] == "60"
    assert got.headers["RateLimit-Policy"] == '"per-client";q=10;w=600, "writes";q=2;w=120'
    assert got.headers["RateLimit"] == '"per-client";r=8;t=60, "writes";r=0;t=60'
    problem = got.json()
    assert problem["type"] == QUOTA_EXCEEDED
    assert (problem["status"], problem["title"]) == (429, "Too Many Requests")
    assert (problem["rule"], problem["retry_after"], problem["allowed"]) == ("writes", 60, False)
    assert "writes" in problem["detail"]
    # The rule counts POSTs only: the original method reached Tollgate.
    assert fetch(gateway.url, "GET", "/v1/orders", key(gateway, "bob")).status == 201


def test_the_gateway_sets_the_cost_and_the_client_cannot(gateway):
    first = fetch(gateway.url, "POST", "/v1/reports", key(gateway, "carol"), b"")
    assert first.status == 201 and first.headers["RateLimit"] == '"per-client";r=5;t=60'
    # A client-sent cost or allow token is replaced by the gateway's (none for this route).
    cheap = fetch(gateway.url, "GET", "/v1/items", {**key(gateway, "carol"), "Tollgate-Cost": "1",
                                                    "Tollgate-Allow-Token": "guess"})
    assert cheap.status == 201 and cheap.headers["RateLimit"].startswith('"per-client";r=4;')
    denied = fetch(gateway.url, "POST", "/v1/reports", key(gateway, "carol"), b"")
    assert denied.status == 429 and denied.json()["rule"] == "per-client"


def test_a_client_cannot_pick_the_uri_it_is_counted_under(gateway):
    forged = {**key(gateway, "dave"), "X-Original-URI": "/free", "X-Original-Method": "GET",
              "X-Forwarded-Uri": "/free", "X-Forwarded-Method": "GET"}
    assert [fetch(gateway.url, "POST", "/v1/orders", forged, b"").status for _ in range(3)] == [201, 201, 429]


def test_unlimited_paths_pass_without_headers(gateway, origin):
    before = origin.count()
    outside = fetch(gateway.url, "GET", "/health", key(gateway, "erin"))      # no rule matches
    assert outside.status == 201 and outside.headers["RateLimit"] is None
    assert origin.count() == before + 1


def test_a_blocked_client_gets_tollgates_403(gateway, origin):
    before = origin.count()
    got = fetch(gateway.url, "GET", "/v1/items", key(gateway, "mallory"))
    assert origin.count() == before
    assert got.status == 403 and got.headers["Content-Type"] == "application/problem+json"
    assert got.headers["Retry-After"] is None
    problem = got.json()
    assert (problem["status"], problem["title"], problem["rule"]) == (403, "Client blocked", "per-client")


@pytest.mark.parametrize("name, status", [("nginx", 500), ("caddy", 502)])
def test_an_unreachable_tollgate_fails_closed(tmp_path, origin, name, status):
    down = f"http://127.0.0.1:{free_port()}"                       # nothing listens there
    with LAUNCHERS[name](tmp_path, down, origin.url) as server:
        before = origin.count()
        got = fetch(server.url, "GET", "/v1/items", {"X-Api-Key": "zoe"})
    assert got.status == status and origin.count() == before


def test_keyless_clients_are_counted_by_their_address_whatever_x_forwarded_for_says(gateway, decision_service):
    # The gateway puts the client's own address in X-Forwarded-For (Tollgate's "xff" source):
    # forged values change nothing. Only this test sends keyless requests, all from 127.0.0.1,
    # through both gateways: start from an empty bucket (admin API).
    reset = fetch(decision_service.url, "DELETE", "/__tollgate/admin/clients/ip%3A127.0.0.1",
                  {"Authorization": f"Bearer {SECRETS['ADMIN_TOKEN']}"})
    assert reset.status == 200, reset
    statuses = [fetch(gateway.url, "GET", "/v1/items", {"X-Forwarded-For": f"198.51.100.{i}"}).status
                for i in range(11)]
    assert statuses == [201] * 10 + [429]
