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
file; a past-due alarm fires right after start. The base delay is a parameter
so tests need not wait seconds.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
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


@dataclass
class _Alarm:
    at_ms: int | None
    name: str | None
    retry: int = 0
    running: bool = False
    set_while_running: bool = False
    handle: asyncio.TimerHandle | None = None


class AlarmScheduler:
    def __init__(self, state_dir: Path, runner: Runner, base_delay_s: float = BASE_RETRY_DELAY_S,
                 max_retries: int = MAX_RETRIES, now_ms: Callable[[], int] = _now_ms) -> None:
        self._db = open_database(state_dir / "alarms.sqlite")
        self._db.execute("CREATE TABLE IF NOT EXISTS alarms (class_name TEXT NOT NULL, object_id TEXT NOT NULL, "
                         "name TEXT, scheduled_ms INTEGER NOT NULL, retry_count INTEGER NOT NULL DEFAULT 0, "
                         "PRIMARY KEY (class_name, object_id))")
        self._runner = runner
        self.base_delay_s = base_delay_s
        self.max_retries = max_retries
        self._now_ms = now_ms
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
        delay = max(0.0, (alarm.at_ms - self._now_ms()) / 1000)
        alarm.handle = loop.call_later(delay, self._spawn, key)

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
