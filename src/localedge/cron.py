"""Cron triggers from `[triggers] crons`, parsed by croniter in UTC.

The clock and the sleep are injected, so tests step through a day of
schedule without waiting: `next_fire(now_ms)` is pure, and `run()` only
sleeps through the given `sleep`.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from typing import Awaitable, Callable

from croniter import croniter

log = logging.getLogger("localedge.cron")

Fire = Callable[[str, int], Awaitable[None]]


def _now_ms() -> int:
    return int(time.time() * 1000)


class CronScheduler:
    def __init__(self, crons: list[str], fire: Fire, now_ms: Callable[[], int] = _now_ms,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        for expr in crons:
            if not croniter.is_valid(expr):
                raise ValueError(f"not a valid cron expression: {expr!r}")
        self.crons = list(crons)
        self._fire = fire
        self._now_ms = now_ms
        self._sleep = sleep
        self.fired: list[tuple[str, int]] = []

    def next_fire(self, now_ms: int) -> tuple[int, list[str]] | None:
        """The next time (epoch ms, strictly after `now_ms`) any cron fires, and which ones."""
        if not self.crons:
            return None
        start = dt.datetime.fromtimestamp(now_ms / 1000, tz=dt.timezone.utc)
        times = {}
        for expr in self.crons:
            nxt = croniter(expr, start).get_next(dt.datetime)
            times[expr] = int(nxt.timestamp() * 1000)
        soonest = min(times.values())
        return soonest, [e for e, t in times.items() if t == soonest]

    async def run(self, iterations: int | None = None) -> None:
        """Fire each cron at its times, forever (or `iterations` rounds, for tests)."""
        done = 0
        while iterations is None or done < iterations:
            now = self._now_ms()
            upcoming = self.next_fire(now)
            if upcoming is None:
                return
            at, exprs = upcoming
            await self._sleep(max(0.0, (at - now) / 1000))
            while self._now_ms() < at:  # woke early (clock skew): sleep the rest
                await self._sleep(max(0.001, (at - self._now_ms()) / 1000))
            for expr in exprs:
                self.fired.append((expr, at))
                try:
                    await self._fire(expr, at)
                except Exception:
                    log.exception("scheduled handler for %r failed", expr)
            done += 1
