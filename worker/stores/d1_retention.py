"""Retention in the cron: roll old hours into days, delete days past retention (D1 only).

Why a cron of its own (USAGE_RETENTION_CRON, default daily at 03:17 UTC, listed in
wrangler.toml's crons): the rollup works in whole days, so once a day is enough,
and the five-minute flush keeps its whole budget and its D1 calls. Each step is one D1
batch of at most USAGE_RETENTION_ROWS_PER_STEP rows (statements from
src/tollgate/retention.py, the rollup table's owner); the loop stops when a step
moves nothing or the budget would run out, and the next run continues. A step
interrupted anywhere either happened entirely (one transaction) or not at all.
The HTTP sink is write-only: retention there is the receiver's job.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

from src.tollgate import clock, retention

log = logging.getLogger("tollgate.retention")


class RetentionReport:
    """What one run did (plain class: dataclasses cost start-up time on Pyodide)."""

    def __init__(self) -> None:
        self.rolled_hours = 0       # hourly rows rolled into days
        self.deleted_days = 0       # daily rows past USAGE_RETENTION_DAYS deleted
        self.steps = 0              # D1 batches
        self.complete = False       # nothing left to do at the end
        self.error: str | None = None

    def as_dict(self) -> dict:
        return dict(vars(self))


def _changes(result: Any) -> int:
    meta = result.get("meta") if isinstance(result, dict) else getattr(result, "meta", None)
    if meta is None:
        return 0
    changes = meta.get("changes") if isinstance(meta, dict) else getattr(meta, "changes", 0)
    return int(changes or 0)


async def _batch(db: Any, step: list[tuple[str, tuple]]) -> list[Any]:
    results = await db.batch([db.prepare(sql).bind(*params) for sql, params in step])
    to_py = getattr(results, "to_py", None)
    return list(to_py() if callable(to_py) else results)


async def run_retention(db: Any, env: Any, room: Callable[[], bool],
                        rep: RetentionReport | None = None) -> RetentionReport:
    """Steps until done or `room()` says the cron's budget is spent (checked before each step)."""
    rep = rep if rep is not None else RetentionReport()
    phases = ((retention.rollup_step, "rolled_hours", 1), (retention.expiry_step, "deleted_days", 0))
    try:
        settings = retention.retention_settings(env)
        for make_step, counter, which in phases:
            while True:
                if not room():
                    return rep
                results = await _batch(db, make_step(clock.now_ms(), settings))
                rep.steps += 1
                moved = _changes(results[which])
                setattr(rep, counter, getattr(rep, counter) + moved)
                if moved < settings.rows_per_step:
                    break
        rep.complete = True
    except Exception as exc:  # the store is down or refused: the next run starts over, nothing half-done
        rep.error = f"{type(exc).__name__}: {exc}"
        log.error("retention: %s", rep.error)
    return rep



def runs_retention(env: Any, controller: Any) -> bool:
    """This invocation is the retention cron (USAGE_RETENTION_CRON), not the flush's."""
    return getattr(controller, "cron", None) == retention.retention_cron(env)


async def retention_cron(env: Any) -> RetentionReport | None:
    """The daily cron: retention alone, with the whole FLUSH_TIME_BUDGET_MS / FLUSH_SUBREQUEST_BUDGET."""
    from src.tollgate.topology import flush_subrequest_budget, flush_time_budget_ms
    from worker.stores import store_kind
    if store_kind(env) != "d1" or getattr(env, "USAGE_DB", None) is None:
        return None     # the HTTP sink's receiver keeps its own history
    budget_ms = flush_time_budget_ms(env)
    max_steps = flush_subrequest_budget(env) - 1
    started = clock.now_ms()

    def room() -> bool:   # the next step must fit: keep a tenth of the time in hand
        return clock.now_ms() - started < budget_ms * 9 // 10 and report.steps < max_steps
    report = RetentionReport()
    await run_retention(env.USAGE_DB, env, room, report)
    log.info("retention: %s", report.as_dict())
    return report
