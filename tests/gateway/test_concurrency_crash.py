"""An isolate killed while holding concurrency slots (issue 14): its releases never come,
so the slots stop counting at most `hold_seconds` after their last renewal, which is
before the kill. SIGKILL the whole runtime, restart it on the same state folder: the
slots are still held (they are rows in the bucket's storage), then free within the hold."""
from __future__ import annotations

import asyncio
import time

import aiohttp

from tests.gateway.support import Origin, write_config

HOLD_S = 8
TOLLGATE = {"identity": ["header:x-api-key"],
            "rules": [{"name": "inflight", "limit": "5 concurrent", "hold_seconds": HOLD_S}]}
WHO = {"X-Api-Key": "alice"}
SLACK_S = 1.5     # the probes' own round trips, and the bucket's clock against ours


async def hold_five(url: str, origin: Origin) -> tuple[float, aiohttp.ClientSession, list]:
    """Five requests held at the origin (slots taken): when the first was sent, the session, the requests."""
    sent = time.time()
    http = aiohttp.ClientSession()
    tasks = [asyncio.ensure_future(http.get(f"{url}/hold", headers=WHO)) for _ in range(5)]
    while origin.in_flight < 5:
        await asyncio.sleep(0.01)
        assert time.time() - sent < 30, "five requests did not reach the origin"
    async with http.get(f"{url}/v1/x", headers=WHO) as r:
        assert r.status == 429, "five in flight: the sixth is denied"
    return sent, http, tasks


async def probe_until_admitted(url: str) -> list[tuple[float, int]]:
    seen: list[tuple[float, int]] = []
    async with aiohttp.ClientSession() as http:
        while not seen or seen[-1][1] != 201:
            async with http.get(f"{url}/v1/x", headers=WHO) as r:
                seen.append((time.time(), r.status))
            await asyncio.sleep(0.1)
            assert len(seen) < 1000
    return seen


def test_killed_isolate_frees_its_slots_within_the_hold(tmp_path, edge_process, runtime):
    config = write_config(tmp_path / "cfg", TOLLGATE)
    state = tmp_path / "state"
    with Origin() as origin:
        first = edge_process(config, state, origin=origin.url)
        loop = asyncio.new_event_loop()
        taken, http, tasks = loop.run_until_complete(hold_five(first.url, origin))
        first.kill()
        killed = time.time()
        second = edge_process(config, state, origin=origin.url)
        up = time.time()
        seen = loop.run_until_complete(probe_until_admitted(second.url))
        for task in tasks:
            task.cancel()
        loop.run_until_complete(http.close())
        loop.close()
        origin.let_go(5)
    freed_at = seen[-1][0]
    assert freed_at <= killed + HOLD_S + SLACK_S, f"slots held {freed_at - killed:.1f} s after the kill"
    assert freed_at >= taken + HOLD_S - SLACK_S, "the lost slots counted until their hold ran out"
    if up < taken + HOLD_S - SLACK_S:
        assert seen[0][1] == 429, "after the restart the lost slots still count (they are in storage)"
