"""Latency histograms: the decision round trip, the origin's answer time and the
time the gateway adds, per rule set, aggregated across isolates.

The Workers clock: deployed, `performance.now()` and `Date.now()` advance only
when I/O happens (a Spectre mitigation; developers.cloudflare.com/workers/
runtime-apis/performance). So a span is real only when it ends at an I/O
completion: the decision span ends when the bucket's RPC answer arrives, the
origin span when the origin's headers arrive. "Added" is the whole request
minus the origin span: on the edge it counts the waits (the decision RPC,
reading the body), not the Worker's own CPU, which the clock cannot see (CPU
cost is measured by the conformance harness instead). The local runtime's
clock always advances, so there it includes CPU too.

Aggregation without one write per request: each isolate adds observations to
bucket counts in memory and, at most every LATENCY_BATCH_MS (default 10000) or
every LATENCY_BATCH_COUNT observations (default 500), sends the accumulated
deltas to one random outbox shard off the request path (ctx.waitUntil). The
shards keep durable sums; the scrape adds them up. An isolate evicted before
its batch went out loses that batch: these histograms describe the shape
(p50, p99), not accounting, which the decision counters do exactly.
"""
from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from typing import Any

from src.tollgate.envvars import env_str
from src.tollgate.snapshots import shard_name
from src.tollgate.topology import outbox_shards
from worker.isolate import PerIsolate

log = logging.getLogger("tollgate.latency")

BOUNDS_MS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)   # le, in ms; then +Inf
KINDS = ("decision", "origin", "added")
NO_RULES = "none"
DEFAULT_BATCH_MS = 10_000
DEFAULT_BATCH_COUNT = 500


def bucket_index(ms: float) -> int:
    """The first bucket whose upper bound holds `ms` (len(BOUNDS_MS) for +Inf)."""
    for i, bound in enumerate(BOUNDS_MS):
        if ms <= bound:
            return i
    return len(BOUNDS_MS)


_last_label: tuple[Any, str] = ((), NO_RULES)


def rules_label(rules: Any) -> str:
    """A rule set as a label value: the rule names in decision order, `+`-joined. The last
    set's label is kept: the resolution hands out the same rules tuple for every request of
    a route, so most requests find it with one identity check."""
    global _last_label
    last, label = _last_label
    if rules is last:
        return label
    names = [r.name for r in rules]
    label = "+".join(names) if names else NO_RULES
    if isinstance(rules, tuple):    # immutable: safe to recognise by identity
        _last_label = (rules, label)
    return label


class Recorder:
    """One isolate's observations not yet sent: {kind: {rules: [count per bucket..., sum in µs]}}."""

    def __init__(self) -> None:
        self.pending: dict[str, dict[str, list[int]]] = {}
        self.observed = 0
        self.last_sent_s = time.monotonic()
        self.limits: tuple[int, int] | None = None   # (batch ms, batch count), read once per isolate

    def observe(self, kind: str, rules: str, ms: float) -> None:
        per_kind = self.pending.get(kind)
        if per_kind is None:
            per_kind = self.pending[kind] = {}
        series = per_kind.get(rules)
        if series is None:
            series = per_kind[rules] = [0] * (len(BOUNDS_MS) + 2)
        series[bucket_index(ms)] += 1
        series[-1] += max(0, round(ms * 1000))
        self.observed += 1

    def due(self, batch_ms: int, batch_count: int) -> bool:
        return self.observed > 0 and (self.observed >= batch_count
                                      or (time.monotonic() - self.last_sent_s) * 1000 >= batch_ms)

    def take(self) -> str:
        payload = json.dumps(self.pending, separators=(",", ":"))
        self.pending, self.observed, self.last_sent_s = {}, 0, time.monotonic()
        return payload


_recorders = PerIsolate(Recorder)   # one per isolate (worker/isolate.py)
_sending: set = set()        # batches in flight, referenced until done


def now() -> float:
    """Seconds on the clock spans are measured with (see the module docstring)."""
    return time.perf_counter()


def observe(env: Any, ctx: Any, kind: str, rules: str, seconds: float) -> None:
    """Count one span; sends the isolate's batch in the background when it is due. Never raises."""
    try:
        recorder = _recorders.get(env)
        recorder.observe(kind, rules, seconds * 1000)
        if recorder.due(*_batch_limits(env, recorder)):
            _send_later(env, ctx, recorder.take())
    except Exception as exc:   # measuring must never change an answer
        log.warning("latency: not recorded: %s", exc)


def _batch_limits(env: Any, recorder: Recorder) -> tuple[int, int]:
    """(LATENCY_BATCH_MS, LATENCY_BATCH_COUNT), read once per isolate: vars change only with a
    deploy, which starts new isolates, and env reads cost CPU on every request on Pyodide."""
    if recorder.limits is None:
        recorder.limits = (_env_int(env, "LATENCY_BATCH_MS", DEFAULT_BATCH_MS),
                           _env_int(env, "LATENCY_BATCH_COUNT", DEFAULT_BATCH_COUNT))
    return recorder.limits


def _env_int(env: Any, name: str, default: int) -> int:
    text = env_str(env, name)
    return int(text) if text and text.strip().isdigit() else default


def _send_later(env: Any, ctx: Any, payload: str) -> None:
    task = asyncio.ensure_future(_send(env, payload))
    _sending.add(task)
    task.add_done_callback(_sending.discard)
    wait_until = getattr(ctx, "waitUntil", None) if ctx is not None else None
    if callable(wait_until):
        wait_until(task)


async def _send(env: Any, payload: str) -> None:
    target = env.OUTBOX.getByName(shard_name(random.randrange(outbox_shards(env))))
    try:
        await target.add_latency(payload)
    except Exception as exc:
        log.warning("latency: batch not sent: %s", exc)
