"""Durable Object alarms: persisted, fired when due, retried with backoff.

Semantics from developers.cloudflare.com/durable-objects/api/alarms/:
- one alarm per object; `setAlarm` replaces it; `getAlarm` returns the
  epoch ms or None, and None while `alarm()` runs unless `setAlarm` was called
  since the handler started;
- "The alarm() handler has guaranteed at-least-once execution and will be
  retried upon failure using exponential backoff, starting at 2 second delays
  for up to 6 retries" (`alarm_info.retryCount`, `alarm_info.isRetry`).

Alarms live in one runtime-level SQLite table (<state>/alarms.sqlite) so a
restarted runtime finds every pending alarm without opening each object's
file; a past-due alarm fires right after start.

Time comes from a clock: `LoopClock` (the default) is the wall clock
and the event loop's timers; `ManualClock` is virtual time that moves only
when `AlarmScheduler.advance()` is awaited, so tests check Cloudflare's real
2 s backoff to the millisecond without waiting for it.
"""
from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Awaitable, Callable

from workers import JsDict

from src.localedge.durable.storage import open_database

log = logging.getLogger("localedge.alarms")

AlarmKey = tuple[str, str]  # (class name, object id hex)
Runner = Callable[[AlarmKey, "str | None", JsDict], Awaitable[None]]

MAX_RETRIES = 6
BASE_RETRY_DELAY_S = 2.0


def _now_ms() -> int:
    return int(time.time() * 1000)


class LoopClock:
    """Wall-clock time and the running event loop's timers."""

    def __init__(self, now_ms: Callable[[], int] = _now_ms) -> None:
        self.now_ms = now_ms

    def call_at(self, at_ms: int, callback: Callable[..., None], *args: object) -> asyncio.TimerHandle:
        delay = max(0.0, (at_ms - self.now_ms()) / 1000)
        return asyncio.get_running_loop().call_later(delay, callback, *args)


@dataclass(order=True)
class _ManualTimer:
    at_ms: int
    seq: int
    callback: Callable[..., None] = field(compare=False)
    args: tuple = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """Virtual time: timers fire only inside `AlarmScheduler.advance()`, in time order."""

    def __init__(self, start_ms: int) -> None:
        self.now = start_ms
        self._timers: list[_ManualTimer] = []
        self._seq = itertools.count()

    def now_ms(self) -> int:
        return self.now

    def call_at(self, at_ms: int, callback: Callable[..., None], *args: object) -> _ManualTimer:
        timer = _ManualTimer(max(at_ms, self.now), next(self._seq), callback, args)
        heapq.heappush(self._timers, timer)
        return timer

    def pop_due(self, until_ms: int) -> _ManualTimer | None:
        """The earliest live timer due at or before `until_ms`, time moved to it; else None."""
        while self._timers and self._timers[0].at_ms <= until_ms:
            timer = heapq.heappop(self._timers)
            if not timer.cancelled:
                self.now = max(self.now, timer.at_ms)
                return timer
        return None


@dataclass
class _Alarm:
    at_ms: int | None
    name: str | None
    retry: int = 0
    running: bool = False
    set_while_running: bool = False
    handle: "asyncio.TimerHandle | _ManualTimer | None" = None


class AlarmScheduler:
    def __init__(self, state_dir: Path, runner: Runner, base_delay_s: float = BASE_RETRY_DELAY_S,
                 max_retries: int = MAX_RETRIES, clock: "LoopClock | ManualClock | None" = None) -> None:
        self._db = open_database(state_dir / "alarms.sqlite")
        self._db.execute("CREATE TABLE IF NOT EXISTS alarms (class_name TEXT NOT NULL, object_id TEXT NOT NULL, "
                         "name TEXT, scheduled_ms INTEGER NOT NULL, retry_count INTEGER NOT NULL DEFAULT 0, "
                         "PRIMARY KEY (class_name, object_id))")
        self._runner = runner
        self.base_delay_s = base_delay_s
        self.max_retries = max_retries
        self.clock = clock if clock is not None else LoopClock()
        self._now_ms = self.clock.now_ms
        self._alarms: dict[AlarmKey, _Alarm] = {}
        self._tasks: set[asyncio.Task] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.fired = 0  # handler invocations, for tests and benchmarks

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Load persisted alarms and schedule them (past-due ones fire now)."""
        self._loop = asyncio.get_running_loop()
        for cls, oid, name, at, retry in self._db.execute(
                "SELECT class_name, object_id, name, scheduled_ms, retry_count FROM alarms"):
            alarm = _Alarm(at, name, retry)
            self._alarms[(cls, oid)] = alarm
            self._schedule((cls, oid), alarm)

    async def stop(self, timeout_s: float = 5.0) -> None:
        for alarm in self._alarms.values():
            if alarm.handle is not None:
                alarm.handle.cancel()
                alarm.handle = None
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout_s)
        self._loop = None
        self._db.close()

    async def advance(self, ms: int) -> None:
        """ManualClock only: move time `ms` forward, running every alarm (and retry) due by then
        to completion, in time order."""
        clock = self.clock
        if not isinstance(clock, ManualClock):
            raise TypeError("advance() needs a ManualClock; this scheduler runs on real time")
        target = clock.now + ms
        while (timer := clock.pop_due(target)) is not None:
            timer.callback(*timer.args)
            while self._tasks:
                await asyncio.wait(list(self._tasks))
        clock.now = target

    def pending(self) -> dict[AlarmKey, int]:
        return {k: a.at_ms for k, a in self._alarms.items() if a.at_ms is not None}

    # ------------------------------------------------------------ storage API
    def set(self, key: AlarmKey, name: str | None, at_ms: int) -> None:
        alarm = self._alarms.get(key)
        if alarm is None:
            alarm = self._alarms[key] = _Alarm(at_ms, name)
        else:
            alarm.at_ms = at_ms
            alarm.name = alarm.name or name
            alarm.retry = 0
            if alarm.running:
                alarm.set_while_running = True
        self._persist(key, alarm)
        if not alarm.running:
            self._schedule(key, alarm)

    def name_of(self, key: AlarmKey) -> str | None:
        """The object name an alarm was set under, None when it has none or no alarm."""
        alarm = self._alarms.get(key)
        return alarm.name if alarm is not None else None

    def get(self, key: AlarmKey) -> int | None:
        alarm = self._alarms.get(key)
        if alarm is None or (alarm.running and not alarm.set_while_running):
            return None
        return alarm.at_ms

    def delete(self, key: AlarmKey) -> None:
        alarm = self._alarms.get(key)
        if alarm is None:
            return
        if alarm.handle is not None:
            alarm.handle.cancel()
            alarm.handle = None
        if alarm.running:
            alarm.at_ms = None
            alarm.set_while_running = False
        else:
            del self._alarms[key]
        self._db.execute("DELETE FROM alarms WHERE class_name = ? AND object_id = ?", key)

    # ------------------------------------------------------------ internals
    def _persist(self, key: AlarmKey, alarm: _Alarm) -> None:
        self._db.execute(
            "INSERT INTO alarms (class_name, object_id, name, scheduled_ms, retry_count) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(class_name, object_id) DO UPDATE SET name = excluded.name, "
            "scheduled_ms = excluded.scheduled_ms, retry_count = excluded.retry_count",
            (key[0], key[1], alarm.name, alarm.at_ms, alarm.retry))

    def _schedule(self, key: AlarmKey, alarm: _Alarm) -> None:
        if alarm.handle is not None:
            alarm.handle.cancel()
            alarm.handle = None
        loop = self._loop
        if loop is None or alarm.at_ms is None:
            return  # not started yet: start() schedules everything persisted
        alarm.handle = self.clock.call_at(alarm.at_ms, self._spawn, key)

    def _spawn(self, key: AlarmKey) -> None:
        task = asyncio.ensure_future(self._fire(key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fire(self, key: AlarmKey) -> None:
        alarm = self._alarms.get(key)
        if alarm is None or alarm.running or alarm.at_ms is None:
            return
        alarm.handle = None
        if alarm.at_ms > self._now_ms() + 1:  # moved later meanwhile
            self._schedule(key, alarm)
            return
        alarm.running, alarm.set_while_running = True, False
        info = JsDict(retryCount=alarm.retry, isRetry=alarm.retry > 0)
        ok = True
        try:
            self.fired += 1
            await self._runner(key, alarm.name, info)
        except Exception as exc:  # the runner already logged the traceback
            ok = False
            log.warning("alarm of %s %s failed (retry %d): %s", key[0], key[1][:12], alarm.retry, exc)
        finally:
            alarm.running = False
        if self._loop is None:
            return  # shutting down: whatever is persisted fires after the restart
        if alarm.set_while_running:
            alarm.set_while_running = False
            self._schedule(key, alarm)
            return
        if alarm.at_ms is None:  # deleted while running
            self._alarms.pop(key, None)
            return
        if ok or alarm.retry >= self.max_retries:
            if not ok:
                log.error("alarm of %s %s gave up after %d retries", key[0], key[1][:12], alarm.retry)
            del self._alarms[key]
            self._db.execute("DELETE FROM alarms WHERE class_name = ? AND object_id = ?", key)
            return
        alarm.retry += 1
        alarm.at_ms = self._now_ms() + int(self.base_delay_s * 1000 * 2 ** (alarm.retry - 1))
        self._persist(key, alarm)
        self._schedule(key, alarm)
