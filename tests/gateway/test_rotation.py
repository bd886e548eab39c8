"""Rotating IDENTITY_SECRET with IDENTITY_SECRET_PREVIOUS, seen from outside (both runtimes):
a client's spent quota stays spent under the new secret; a new client starts fresh."""
from __future__ import annotations

import asyncio
import json
import time

import aiohttp

from tests.gateway.support import SECRETS, Origin, call, serving, write_config

TOLLGATE = {"identity": ["header:x-api-key"],
            "rules": [{"name": "daily", "limit": "5/day", "algorithm": "fixed_window"},
                      {"name": "burst", "limit": "100/day", "burst": 20}]}
ADMIN = {"Authorization": f"Bearer {SECRETS['ADMIN_TOKEN']}"}
OLD = {**SECRETS, "IDENTITY_SECRET": "secret-before-rotation"}
NEW = {**SECRETS, "IDENTITY_SECRET": "secret-after-rotation", "IDENTITY_SECRET_PREVIOUS": OLD["IDENTITY_SECRET"]}


async def statuses(http, url, key, n):
    return [(await call(http, "GET", f"{url}/v1/x", headers={"X-Api-Key": key}))[0] for _ in range(n)]


async def view(http, url, who):
    status, _, body = await call(http, "GET", f"{url}/__tollgate/admin/clients/{who}", headers=ADMIN)
    assert status == 200, body
    return json.loads(body)


def test_a_rotated_secret_keeps_every_clients_spent_quota(tmp_path):
    state = tmp_path / "state"
    before = write_config(tmp_path / "before", TOLLGATE, vars={"SNAPSHOT_DELAY_MS": "50"}, secrets=OLD)
    after = write_config(tmp_path / "after", TOLLGATE, vars={"SNAPSHOT_DELAY_MS": "50"}, secrets=NEW)

    async def main():
        with Origin() as origin:
            async with serving(before, state, origin=origin.url) as edge, aiohttp.ClientSession() as http:
                assert await statuses(http, edge.url, "alice", 6) == [201] * 5 + [429]
                old_key = (await view(http, edge.url, "alice"))["client"]
                deadline = time.monotonic() + 30
                while (await view(http, edge.url, "alice"))["unsent"]:   # pushed before the restart
                    assert time.monotonic() < deadline, "alice's usage never left her bucket"
                    await asyncio.sleep(0.05)
            async with serving(after, state, origin=origin.url) as edge, aiohttp.ClientSession() as http:
                assert await statuses(http, edge.url, "alice", 2) == [429, 429]   # no fresh quota
                assert await statuses(http, edge.url, "bob", 1) == [201]          # a new client: fresh
                alice = await view(http, edge.url, "alice")
                assert alice["client"] != old_key
                daily = alice["rules"]["daily"]
                assert (daily["remaining"], daily["allowed"], daily["denied"]) == (0, 0, 2)
                assert origin.count() == 6
    asyncio.run(main())
