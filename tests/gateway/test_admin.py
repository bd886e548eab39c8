"""Admin API: only with ADMIN_TOKEN; shows and resets one client's bucket."""
from __future__ import annotations

import json

from tests.gateway.support import SECRETS, call, problem_of, run_scenario

TOLLGATE = {"identity": ["header:x-api-key", "ip"],
            "rules": [{"name": "daily", "limit": "5/day", "algorithm": "fixed_window"},
                      {"name": "burst", "limit": "50/day", "burst": 10}]}
ADMIN = {"Authorization": f"Bearer {SECRETS['ADMIN_TOKEN']}"}


def run(tmp_path, scenario, secrets=None):
    run_scenario(tmp_path, TOLLGATE, lambda edge, origin, http: scenario(edge, http), secrets=secrets)


def test_admin_needs_the_token(tmp_path):
    async def scenario(edge, http):
        url = f"{edge.url}/__tollgate/admin/clients/alice"
        status, headers, body = await call(http, "GET", url)
        problem_of(401, headers, body)
        assert headers["WWW-Authenticate"].startswith("Bearer")
        for wrong in ("Bearer nope", f"Basic {SECRETS['ADMIN_TOKEN']}", f"Bearer {SECRETS['ADMIN_TOKEN']}x"):
            status, headers, body = await call(http, "DELETE", url, headers={"Authorization": wrong})
            problem_of(403, headers, body)
    run(tmp_path, scenario)


def test_admin_disabled_without_admin_token(tmp_path):
    async def scenario(edge, http):
        status, headers, body = await call(http, "GET", f"{edge.url}/__tollgate/admin/clients/alice", headers=ADMIN)
        assert "ADMIN_TOKEN" in problem_of(403, headers, body)["detail"]
    run(tmp_path, scenario, secrets={"IDENTITY_SECRET": "s", "ALLOW_TOKEN": "a"})


def test_get_shows_state_per_rule_and_delete_resets(tmp_path):
    async def scenario(edge, http):
        for _ in range(5):
            assert (await call(http, "GET", f"{edge.url}/v1/x", headers={"X-Api-Key": "alice"}))[0] == 201
        assert (await call(http, "GET", f"{edge.url}/v1/x", headers={"X-Api-Key": "alice"}))[0] == 429
        views = []
        for spelled in ("alice", "key:alice", "key%3Aalice"):
            status, _, body = await call(http, "GET", f"{edge.url}/__tollgate/admin/clients/{spelled}", headers=ADMIN)
            assert status == 200
            views.append(json.loads(body))
        assert len({v["client"] for v in views}) == 1 and views[0]["identity"] == "key:alice"
        daily, burst = views[0]["rules"]["daily"], views[0]["rules"]["burst"]
        assert (daily["allowed"], daily["denied"], daily["remaining"]) == (5, 1, 0)
        assert (burst["allowed"], burst["remaining"]) == (5, 5)
        status, _, body = await call(http, "DELETE", f"{edge.url}/__tollgate/admin/clients/alice", headers=ADMIN)
        assert status == 200 and json.loads(body)["reset"] is True
        assert (await call(http, "GET", f"{edge.url}/v1/x", headers={"X-Api-Key": "alice"}))[0] == 201
        # an IP identity, and one that is not an address
        status, _, body = await call(http, "GET", f"{edge.url}/__tollgate/admin/clients/ip:127.0.0.1", headers=ADMIN)
        assert status == 200 and json.loads(body)["identity"] == "ip:127.0.0.1"
        status, headers, body = await call(http, "GET", f"{edge.url}/__tollgate/admin/clients/ip:nope", headers=ADMIN)
        problem_of(400, headers, body)
    run(tmp_path, scenario)
