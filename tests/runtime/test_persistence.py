"""Durability across restarts and SIGKILL, with the runtime in a child process."""
from __future__ import annotations

import asyncio

import aiohttp

from tests.runtime.conftest import run


async def _get(session: aiohttp.ClientSession, url: str) -> dict:
    async with session.get(url) as r:
        assert r.status == 200, await r.text()
        return await r.json()


def test_sql_storage_survives_a_restart(state, processes):
    first = processes(state).start()

    async def write():
        async with aiohttp.ClientSession() as s:
            assert (await _get(s, f"{first.url}/add/keep?n=7"))["total"] == 7
            assert (await _get(s, f"{first.url}/add/keep?n=5"))["total"] == 12
    run(write())
    assert first.stop() == 0  # SIGTERM: graceful shutdown
    second = processes(state).start()

    async def read():
        async with aiohttp.ClientSession() as s:
            assert (await _get(s, f"{second.url}/total/keep"))["total"] == 12
    run(read())


def test_sigkill_under_load_loses_no_delivered_write(state, processes):
    edge = processes(state).start()
    acknowledged: list[int] = []

    async def load():
        async with aiohttp.ClientSession() as s:
            async def worker(name: str):
                while True:
                    try:
                        data = await _get(s, f"{edge.url}/add/{name}?n=1")
                    except (aiohttp.ClientError, asyncio.TimeoutError, AssertionError):
                        return
                    acknowledged.append(data["total"]) if name == "k0" else None
            tasks = [asyncio.ensure_future(worker(f"k{i % 3}")) for i in range(12)]
            while len(acknowledged) < 60:
                await asyncio.sleep(0.005)
            edge.kill()  # SIGKILL mid-load: requests are in flight
            await asyncio.gather(*tasks)
    run(load())
    assert len(acknowledged) >= 60
    restarted = processes(state).start()

    async def check():
        async with aiohttp.ClientSession() as s:
            total = (await _get(s, f"{restarted.url}/total/k0"))["total"]
        # every total a client saw was committed; at most the in-flight ones beyond it
        assert total >= max(acknowledged)
        assert total <= max(acknowledged) + 4
    run(check())


def test_alarm_set_before_a_sigkill_fires_after_the_restart(state, processes):
    import time
    edge = processes(state).start()
    at = int(time.time() * 1000) + 300

    async def arm():
        async with aiohttp.ClientSession() as s:
            assert (await _get(s, f"{edge.url}/arm/sleeper?at={at}"))["alarm"] == at
    run(arm())
    edge.kill()  # before it is due
    while time.time() * 1000 < at + 50:  # restart once it is past due: it fires during start-up,
        time.sleep(0.01)                 # before any request could name the object
    restarted = processes(state).start()

    async def wait_for_log():
        async with aiohttp.ClientSession() as s:
            for _ in range(500):
                data = await _get(s, f"{restarted.url}/alarmlog/sleeper")
                if data["log"]:
                    # ctx.id.name survives too: the alarm woke the object before any getByName call
                    assert data["names"] == ["sleeper"]
                    return data["log"]
                await asyncio.sleep(0.01)
        raise AssertionError("the alarm never fired after the restart")
    assert run(wait_for_log()) == [{"retry": 0, "is_retry": 0}]
    assert int(time.time() * 1000) >= at
