"""SIGKILL the runtime under load, restart it on the same state folder: nothing
beyond the limit is ever admitted (the bucket's state is on disk before any
answer leaves it)."""
from __future__ import annotations

import asyncio
import json

import aiohttp

from tests.gateway.support import SECRETS, Origin, write_config

LIMIT = 50
TOLLGATE = {"identity": ["header:x-api-key"],
            "rules": [{"name": "daily", "limit": f"{LIMIT}/day", "algorithm": "fixed_window"}]}
WHO = {"X-Api-Key": "alice"}


async def hammer(url: str, stop_after: int | None, on_threshold=None, total: int = 400, concurrency: int = 16):
    """Send up to `total` requests, `concurrency` at a time; call `on_threshold` once
    `stop_after` answers came back. Returns the statuses (None: connection lost)."""
    statuses: list[int | None] = []
    fired = False
    queue = iter(range(total))

    async def worker(http):
        nonlocal fired
        for i in queue:
            try:
                async with http.get(f"{url}/v1/item/{i}", headers=WHO) as r:
                    await r.read()
                    statuses.append(r.status)
            except (aiohttp.ClientError, asyncio.TimeoutError):
                statuses.append(None)
                return
            if stop_after is not None and not fired and len(statuses) >= stop_after:
                fired = True
                on_threshold()

    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=concurrency)) as http:
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
    return statuses


def test_sigkill_under_load_then_restart_admits_nothing_beyond_the_limit(tmp_path, edge_process):
    config = write_config(tmp_path / "cfg", TOLLGATE)
    state = tmp_path / "state"
    with Origin() as origin:
        first = edge_process(config, state, origin=origin.url)
        before = asyncio.run(hammer(first.url, stop_after=LIMIT // 2, on_threshold=first.kill))
        assert first.proc.poll() is not None, "the runtime was killed mid-run"
        admitted_before = before.count(201)
        assert 0 < admitted_before < LIMIT and None in before, before

        second = edge_process(config, state, origin=origin.url)
        after = asyncio.run(hammer(second.url, stop_after=None, total=2 * LIMIT))
        assert None not in after
        admitted = admitted_before + after.count(201)
        assert admitted <= LIMIT, f"{admitted} admitted across the crash, limit {LIMIT}"
        assert origin.count() <= LIMIT
        assert after[-LIMIT:] == [429] * LIMIT, "the quota is used up and stays used up"

        async def bucket_view():
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{second.url}/__tollgate/admin/clients/alice",
                                    headers={"Authorization": f"Bearer {SECRETS['ADMIN_TOKEN']}"}) as r:
                    return json.loads(await r.read())
        daily = asyncio.run(bucket_view())["rules"]["daily"]
        # the bucket counted exactly the limit: what the crash interrupted was decided once, never twice
        assert daily["allowed"] == LIMIT and daily["remaining"] == 0
        # the origin may have answered a request whose reply died with the runtime, never more
        assert admitted <= origin.count() <= LIMIT
