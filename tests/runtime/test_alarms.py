"""Alarms: fire when due, once, retried with Cloudflare's backoff, persisted across restarts.

Time is virtual (`ManualClock`): nothing fires until the test moves it, so each
test checks the exact instants (a due alarm fires at its ms, not 1 ms before;
retries 2 s, 4 s, 8 s... later) without waiting for any of them.
"""
from __future__ import annotations

from src.localedge.durable.alarms import BASE_RETRY_DELAY_S, MAX_RETRIES, ManualClock
from tests.runtime.conftest import edge, run

START_MS = 1_800_000_000_000
BACKOFF_MS = [int(BASE_RETRY_DELAY_S * 1000) * 2 ** n for n in range(MAX_RETRIES)]   # 2 s, 4 s, ... 64 s


def test_alarm_fires_when_due_once_and_is_cleared(state):
    async def body():
        clock = ManualClock(START_MS)
        async with edge(state, alarm_clock=clock) as e:
            stub = e.env.COUNTERS.getByName("a1")
            at = START_MS + 50
            assert await stub.arm(at, 0) == at      # getAlarm right after setAlarm
            await e.alarms.advance(49)
            assert await stub.alarm_log() == []     # 1 ms early: not yet
            await e.alarms.advance(1)
            assert await stub.alarm_log() == [{"retry": 0, "is_retry": 0}]
            await e.alarms.advance(3_600_000)
            assert await stub.alarm_log() == [{"retry": 0, "is_retry": 0}]   # once
            assert await stub.get_alarm() is None
            assert e.alarms.pending() == {}
    run(body())


def test_failing_alarm_is_retried_with_exponential_backoff_then_succeeds(state):
    async def body():
        clock = ManualClock(START_MS)
        async with edge(state, alarm_clock=clock) as e:
            stub = e.env.COUNTERS.getByName("a2")
            await stub.arm(START_MS, 2)             # fails on retryCount 0 and 1
            await e.alarms.advance(0)
            assert len(await stub.alarm_log()) == 1
            for step, wait in enumerate(BACKOFF_MS[:2], start=2):
                await e.alarms.advance(wait - 1)
                assert len(await stub.alarm_log()) == step - 1, f"retry {step - 1} came early"
                await e.alarms.advance(1)
                assert len(await stub.alarm_log()) == step
            assert await stub.alarm_log() == [{"retry": 0, "is_retry": 0}, {"retry": 1, "is_retry": 1},
                                              {"retry": 2, "is_retry": 1}]
            await e.alarms.advance(sum(BACKOFF_MS))
            assert len(await stub.alarm_log()) == 3    # it succeeded: no more retries
            assert await stub.get_alarm() is None
    run(body())


def test_alarm_gives_up_after_six_retries(state):
    async def body():
        clock = ManualClock(START_MS)
        async with edge(state, alarm_clock=clock) as e:
            stub = e.env.COUNTERS.getByName("a3")
            await stub.arm(START_MS, 100)
            await e.alarms.advance(sum(BACKOFF_MS))
            assert [row["retry"] for row in await stub.alarm_log()] == list(range(MAX_RETRIES + 1))
            await e.alarms.advance(24 * 3_600_000)
            assert len(await stub.alarm_log()) == MAX_RETRIES + 1
            assert e.alarms.pending() == {}
    run(body())


def test_alarm_persists_across_a_restart_and_fires_after_it(state):
    async def body():
        async with edge(state, alarm_clock=ManualClock(START_MS)) as e:
            await e.env.COUNTERS.getByName("a4").arm(START_MS + 400, 0)
            await e.alarms.advance(399)
        # stopped before it was due; a new runtime on the same state fires it when due
        async with edge(state, alarm_clock=ManualClock(START_MS + 399)) as e:
            stub = e.env.COUNTERS.getByName("a4")
            assert await stub.alarm_log() == []
            assert await stub.get_alarm() == START_MS + 400
            await e.alarms.advance(1)
            assert await stub.alarm_log() == [{"retry": 0, "is_retry": 0}]
    run(body())


def test_an_alarm_past_due_at_restart_fires_right_away(state):
    async def body():
        async with edge(state, alarm_clock=ManualClock(START_MS)) as e:
            await e.env.COUNTERS.getByName("a5").arm(START_MS + 400, 0)
        async with edge(state, alarm_clock=ManualClock(START_MS + 60_000)) as e:
            await e.alarms.advance(0)
            assert await e.env.COUNTERS.getByName("a5").alarm_log() == [{"retry": 0, "is_retry": 0}]
    run(body())
