"""What /__tollgate/allow adds for nginx auth_request, which keeps a check's headers
but drops its body: with a deny status asked for, the problem document travels
in Tollgate-Problem too, a denial saying the 429 the end client is to get."""
from __future__ import annotations

import json

from tests.integrations.conftest import fetch


def ask(service, who: str, **headers: str):
    return fetch(service.url, "GET", "/__tollgate/allow",
                 {"X-Api-Key": who, "X-Original-URI": "/v1/orders", "X-Original-Method": "POST", **headers})


def test_a_denial_under_a_deny_status_carries_the_429_document(decision_service):
    for _ in range(2):
        assert ask(decision_service, "header-1", **{"Tollgate-Deny-Status": "403"}).headers["Tollgate-Problem"] is None
    got = ask(decision_service, "header-1", **{"Tollgate-Deny-Status": "403"})
    assert got.status == 403
    body, header = got.json(), json.loads(got.headers["Tollgate-Problem"])
    assert body["status"] == 403 and header["status"] == 429
    assert {k: v for k, v in header.items() if k != "status"} == {k: v for k, v in body.items() if k != "status"}
    assert header["rule"] == "writes" and header["allowed"] is False


def test_without_a_deny_status_nothing_is_added(decision_service):
    for _ in range(2):
        ask(decision_service, "header-2")
    got = ask(decision_service, "header-2")
    assert got.status == 429 and got.headers["Tollgate-Problem"] is None
    assert got.json()["status"] == 429


def test_a_blocked_client_keeps_its_403(decision_service):
    got = ask(decision_service, "mallory-nginx", **{"Tollgate-Deny-Status": "403"})
    assert got.status == 403
    assert json.loads(got.headers["Tollgate-Problem"]) == got.json()
