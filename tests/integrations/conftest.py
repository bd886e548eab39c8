"""Fixtures for the integration tests: the repo's Worker served by the local
runtime as a pure decision service (what a gateway in front of an API calls),
a recording origin, and a small HTTP client that shows what an end client gets."""
from __future__ import annotations

import http.client
import json
import os
from pathlib import Path
from typing import Iterator, Mapping, NamedTuple

import pytest

from tests.conftest import RUNTIMES, EdgeProcess
from tests.gateway.support import SECRETS, Origin, write_config

ALLOW_TOKEN = SECRETS["ALLOW_TOKEN"]
QUOTA_EXCEEDED = "https://iana.org/assignments/http-problem-types#quota-exceeded"

# What the gateway tests limit: every /v1/ request (10 at once, one more a minute),
# and POSTs to /v1/orders on top (2 at once), so a test can tell whether the
# original method reached Tollgate. Keyless clients are counted by the address
# the gateway puts in X-Forwarded-For.
GATEWAY_RULES = {
    "identity": ["header:x-api-key", "xff"],
    "trust_forwarded_for": True,
    "rules": [
        {"name": "per-client", "limit": "1/minute", "burst": 10, "match": {"paths": ["/v1/*"]}},
        {"name": "writes", "limit": "1/minute", "burst": 2, "match": {"methods": ["POST"], "paths": ["/v1/orders*"]}},
    ],
    "overrides": {"key:mallory-nginx": {"per-client": "blocked"}, "key:mallory-caddy": {"per-client": "blocked"}},
}


class Answer(NamedTuple):
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


def fetch(base_url: str, method: str, path: str, headers: Mapping[str, str] | None = None,
          body: bytes | None = None) -> Answer:
    """One request as an end client sends it (no redirects, no header rewriting)."""
    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        resp = conn.getresponse()
        return Answer(resp.status, resp.headers, resp.read())
    finally:
        conn.close()


@pytest.fixture(scope="module")
def origin() -> Iterator[Origin]:
    with Origin() as recording:
        yield recording


def _runtimes() -> list[str]:
    """The runtimes the suite runs on (TOLLGATE_RUNTIMES narrows them, as for `runtime` tests)."""
    wanted = os.environ.get("TOLLGATE_RUNTIMES", ",".join(RUNTIMES)).split(",")
    return [r for r in RUNTIMES if r in wanted]


@pytest.fixture(scope="module", params=_runtimes())
def decision_service(request, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EdgeProcess]:
    """The repo's Worker with GATEWAY_RULES and no ORIGIN_URL, on the local runtime and on real
    workerd (the dry-run bundle): the gateway in front forwards."""
    folder = tmp_path_factory.mktemp(f"tollgate-{request.param}")
    config = write_config(folder / "cfg", GATEWAY_RULES)
    if request.param == "workerd":
        from tests.workerd_edge import WorkerdEdge
        edge = WorkerdEdge(config, folder / "state", "none").start()
    else:
        edge = EdgeProcess(config, folder / "state", origin="none").start()
    try:
        yield edge
    finally:
        edge.stop()
