"""Alarms: fire when due, one event at a time, retried with backoff, persisted across restarts."""
from __future__ import annotations

import asyncio
import time

from tests.runtime.conftest import edge, run


async def _wait_for(predicate, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached in time")


def _now_ms() -> int:
    return int(time.time() * 1000)


def test_alarm_fires_once_and_is_cleared(state):
    async def body():
        async with edge(state) as e:
            stub = e.env.COUNTERS.getByName("a1")
            at = _now_ms() + 50
            assert await stub.arm(at, 0) == at  # getAlarm right after setAlarm
            log = await _wait_for(stub.alarm_log)
            assert log == [{"retry": 0, "is_retry": 0}]
            await asyncio.sleep(0.1)
            assert await stub.alarm_log() == log  # fired once
            assert await stub.get_alarm() is None
    run(body())


def test_failing_alarm_is_retried_with_backoff_then_succeeds(state):
    async def body():
        async with edge(state, alarm_retry_base_s=0.02) as e:
            stub = e.env.COUNTERS.getByName("a2")
            started = time.monotonic()
            await stub.arm(_now_ms(), 2)  # fails on retryCount 0 and 1

            async def three():
                log = await stub.alarm_log()
                return log if len(log) == 3 else None
            log = await _wait_for(three)
            assert log == [{"retry": 0, "is_retry": 0}, {"retry": 1, "is_retry": 1}, {"retry": 2, "is_retry": 1}]
            assert time.monotonic() - started >= 0.02 + 0.04  # exponential: 20 ms then 40 ms
            await asyncio.sleep(0.15)
            assert len(await stub.alarm_log()) == 3
            assert await stub.get_alarm() is None
    run(body())


def test_alarm_gives_up_after_six_retries(state):
    async def body():
        async with edge(state, alarm_retry_base_s=0.005) as e:
            stub = e.env.COUNTERS.getByName("a3")
            await stub.arm(_now_ms(), 100)

            async def seven():
                log = await stub.alarm_log()
                return log if len(log) >= 7 else None
            await _wait_for(seven)
            await asyncio.sleep(0.8)  # longer than another backoff step would be
            log = await stub.alarm_log()
            assert [row["retry"] for row in log] == [0, 1, 2, 3, 4, 5, 6]
    run(body())


def test_alarm_persists_across_a_restart_and_fires_after_it(state):
    async def body():
        async with edge(state) as e:
            stub = e.env.COUNTERS.getByName("a4")
            await stub.arm(_now_ms() + 400, 0)
        # stopped before it was due; a new runtime on the same state fires it
        async with edge(state) as e:
            stub = e.env.COUNTERS.getByName("a4")
            assert await stub.alarm_log() == []
            log = await _wait_for(stub.alarm_log)
            assert log == [{"retry": 0, "is_retry": 0}]
    run(body())
