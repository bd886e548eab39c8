"""/__tollgate/metrics in Prometheus text format, exact across isolates.

Nothing here is an in-memory isolate counter: every number is read at scrape
time from durable places.

- `tollgate_decisions_total{rule,result}` and `tollgate_admitted_cost_total{rule}`:
  summed over the outbox shards, which count each bucket snapshot once when it
  arrives (durable_objects/outbox.py): behind the buckets by SNAPSHOT_DELAY_MS,
  not by a cron interval, and there whatever the store is. A scrape that cannot
  reach every shard leaves them out rather than export a smaller sum, which
  Prometheus would take for a counter reset (and `rate()` for a spike).
- `tollgate_store_decisions_total{rule,result}`: what the D1 store holds (its
  `usage_totals`, kept by triggers); equal to the above once a flush has drained
  the outbox. Absent with the HTTP sink, which is write-only.
- `tollgate_bucket_errors_total{resolution}`: durable counters in the outbox shards.
- `tollgate_outbox_entries{shard}`, `tollgate_outbox_leased_entries{shard}`,
  `tollgate_flush_lag_seconds`, `tollgate_last_flush_success_timestamp_seconds`,
  `tollgate_store_write_errors_total{store}`, `tollgate_flushed_rows_total{store}`.

Access: `Authorization: Bearer <METRICS_TOKEN>` (or ADMIN_TOKEN when no
METRICS_TOKEN is set); with neither configured the endpoint is closed.
"""
from __future__ import annotations

import asyncio
import json
import logging
import random
from typing import Any

from src.tollgate import clock
from src.tollgate.headers import problem
from src.tollgate.snapshots import shard_name
from src.tollgate.topology import METRICS_OBJECT, outbox_shards
from worker import operator_tokens
from worker.latency import BOUNDS_MS

log = logging.getLogger("tollgate.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
RESULTS = (("allowed", "allowed"), ("denied", "denied"), ("shadow_denied", "shadow_denied"))
COUNT_COLUMNS = ("allowed", "admitted", "denied", "shadow_denied")   # the order of a shard's totals
LATENCY_BOUNDS_S = tuple(f"{ms / 1000:g}" for ms in BOUNDS_MS)
LATENCY_FAMILIES = (
    ("decision", "tollgate_decision_duration_seconds",
     "Decision round trip, Worker to the client's bucket and back, per rule set."),
    ("origin", "tollgate_origin_duration_seconds", "Time until the origin's answer (its headers), per rule set."),
    ("added", "tollgate_added_duration_seconds",
     "Time the gateway adds to a forwarded request (whole request minus the origin), per rule set."),
)


def escape_label(value: str) -> str:
    """Prometheus text format: backslash, double quote and newline are escaped in label values."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n")


class Exposition:
    """Builds a text exposition: each family once, HELP and TYPE before its samples."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_: str, samples: list[tuple[dict[str, str], float | int]]) -> None:
        self.lines.append(f"# HELP {name} {escape_help(help_)}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            if labels:
                text = ",".join(f'{k}="{escape_label(str(v))}"' for k, v in labels.items())
                self.lines.append(f"{name}{{{text}}} {_num(value)}")
            else:
                self.lines.append(f"{name} {_num(value)}")

    def histogram(self, name: str, help_: str, series: list[tuple[dict[str, str], list[int], float]]) -> None:
        """A histogram family: per label set, the per-bucket counts (upper bounds `LATENCY_BOUNDS_S`,
        then +Inf) written cumulatively as `_bucket{le}`, then `_sum` (seconds) and `_count`."""
        self.lines.append(f"# HELP {name} {escape_help(help_)}")
        self.lines.append(f"# TYPE {name} histogram")
        for labels, counts, total_s in series:
            text = ",".join(f'{k}="{escape_label(str(v))}"' for k, v in labels.items())
            running = 0
            for bound, n in zip(LATENCY_BOUNDS_S + ("+Inf",), counts):
                running += n
                self.lines.append(f'{name}_bucket{{{text},le="{bound}"}} {running}')
            self.lines.append(f"{name}_sum{{{text}}} {_num(float(total_s))}")
            self.lines.append(f"{name}_count{{{text}}} {running}")

    def text(self) -> bytes:
        return ("\n".join(self.lines) + "\n").encode()


def _num(value: float | int) -> str:
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


def _problem(status: int, title: str, detail: str) -> tuple[int, list[tuple[str, str]], bytes]:
    body, headers = problem(status, title, detail)
    if status == 401:
        headers.append(("WWW-Authenticate", 'Bearer realm="tollgate-metrics"'))
    return status, headers, body


def authorized(env: Any, authorization: str | None) -> bool | None:
    """True/False; None when no token is configured (endpoint closed)."""
    token = operator_tokens.metrics_token(env)
    return None if token is None else operator_tokens.bearer_is(authorization, token)


async def _stats(env: Any, name: str) -> dict | None:
    try:
        return json.loads(await env.OUTBOX.getByName(name).stats())
    except Exception as exc:
        log.warning("metrics: outbox %s unreachable: %s", name, exc)
        return None


def _sum_totals(per_shard: Any) -> dict[str, dict[str, int]]:
    """Shard totals ({rule: [allowed, admitted, denied, shadow_denied]}) summed per rule."""
    out: dict[str, dict[str, int]] = {}
    for totals in per_shard:
        for rule, counts in totals.items():
            into = out.setdefault(rule, dict.fromkeys(COUNT_COLUMNS, 0))
            for col, n in zip(COUNT_COLUMNS, counts):
                into[col] += n
    return out


async def collect(env: Any) -> bytes:
    names = [shard_name(i) for i in range(outbox_shards(env))]
    stats = await asyncio.gather(*(_stats(env, n) for n in names + [METRICS_OBJECT]))
    shard_stats, book = stats[:-1], stats[-1] or {"counters": {}, "gauges": {}}
    now_ms = clock.now_ms()
    out = Exposition()
    if all(s is not None for s in shard_stats):
        _decision_families(out, _sum_totals(s.get("totals", {}) for s in shard_stats))
        _latency_families(out, [s.get("latency", {}) for s in shard_stats])
    await _store_families(out, env)
    _bucket_error_family(out, stats)
    _outbox_families(out, names, shard_stats, now_ms)
    from worker.stores import store_kind
    _flush_families(out, book, store_kind(env))
    return out.text()


def _decision_families(out: Exposition, counted: dict[str, dict[str, int]]) -> None:
    out.family("tollgate_decisions_total", "counter",
               "Decisions per rule and result, counted when the buckets' snapshots reach the outbox.",
               [({"rule": rule, "result": label}, t[col]) for rule, t in sorted(counted.items())
                for col, label in RESULTS])
    out.family("tollgate_admitted_cost_total", "counter",
               "Cost admitted per rule (billing units), counted as tollgate_decisions_total.",
               [({"rule": rule}, t["admitted"]) for rule, t in sorted(counted.items())])


def _latency_families(out: Exposition, per_shard: list[dict]) -> None:
    """The shards' latency sums ({kind: {rules: [count per bucket..., sum µs]}}) as histograms."""
    for kind, name, help_ in LATENCY_FAMILIES:
        merged: dict[str, list[int]] = {}
        for latency in per_shard:
            for rules, slots in latency.get(kind, {}).items():
                into = merged.setdefault(rules, [0] * len(slots))
                for i, n in enumerate(slots):
                    into[i] += n
        out.histogram(name, help_, [({"rules": rules}, slots[:-1], slots[-1] / 1e6)
                                    for rules, slots in sorted(merged.items())])


async def _store_families(out: Exposition, env: Any) -> None:
    totals = None
    try:
        from worker.stores import open_store
        totals = await open_store(env).totals()
        store_up = 1
    except Exception as exc:
        log.warning("metrics: usage store unreadable: %s", exc)
        store_up = 0
    if totals is not None:
        out.family("tollgate_store_decisions_total", "counter",
                   "Decisions per rule and result in the usage store (exact for everything flushed).",
                   [({"rule": rule, "result": label}, t[col]) for rule, t in sorted(totals.items())
                    for col, label in RESULTS])
    out.family("tollgate_store_up", "gauge", "1 if the usage store answered this scrape.", [({}, store_up)])


def _bucket_error_family(out: Exposition, stats: list) -> None:
    bucket_errors: dict[str, int] = {"open": 0, "closed": 0}
    for s in stats:
        for label, n in ((s or {}).get("counters", {}).get("bucket_errors", {})).items():
            bucket_errors[label] = bucket_errors.get(label, 0) + n
    out.family("tollgate_bucket_errors_total", "counter",
               "Requests whose client bucket was unreachable, by how the rule's on_error resolved them.",
               [({"resolution": k}, v) for k, v in sorted(bucket_errors.items())])


def _outbox_families(out: Exposition, names: list[str], shard_stats: list, now_ms: int) -> None:
    up = [({"shard": n}, 1 if s is not None else 0) for n, s in zip(names, shard_stats)]
    out.family("tollgate_outbox_up", "gauge", "1 if the outbox shard answered this scrape.", up)
    out.family("tollgate_outbox_entries", "gauge", "Usage records waiting in an outbox shard.",
               [({"shard": n}, s["depth"]) for n, s in zip(names, shard_stats) if s is not None])
    out.family("tollgate_outbox_leased_entries", "gauge", "Outbox records leased by a flush in progress.",
               [({"shard": n}, s["leased"]) for n, s in zip(names, shard_stats) if s is not None])
    oldest = [s["oldest_ms"] for s in shard_stats if s is not None and s.get("oldest_ms") is not None]
    lag = max(0.0, (now_ms - min(oldest)) / 1000) if oldest else 0.0
    out.family("tollgate_flush_lag_seconds", "gauge",
               "Age of the oldest usage change not yet in the store (0 when the outbox is empty).", [({}, lag)])


def _flush_families(out: Exposition, book: dict, store_label: str) -> None:
    gauges = book.get("gauges", {})
    if "last_flush_success_ms" in gauges:
        out.family("tollgate_last_flush_success_timestamp_seconds", "gauge",
                   "Unix time of the last flush that drained every shard.",
                   [({}, gauges["last_flush_success_ms"] / 1000)])
    counters = book.get("counters", {})
    errors = dict(counters.get("store_write_errors", {}))
    errors.setdefault(store_label, 0)
    out.family("tollgate_store_write_errors_total", "counter", "Store writes the flush could not confirm.",
               [({"store": k}, v) for k, v in sorted(errors.items())])
    flushed = dict(counters.get("flushed_rows", {}))
    flushed.setdefault(store_label, 0)
    out.family("tollgate_flushed_rows_total", "counter", "Usage rows confirmed by the store.",
               [({"store": k}, v) for k, v in sorted(flushed.items())])


async def render(env: Any, authorization: str | None = None) -> tuple[int, list[tuple[str, str]], bytes]:
    ok = authorized(env, authorization)
    if ok is None:
        return _problem(403, "Metrics disabled", "set METRICS_TOKEN (or ADMIN_TOKEN) to enable /__tollgate/metrics")
    if not ok:
        return _problem(401, "Unauthorized", "send Authorization: Bearer <METRICS_TOKEN>")
    try:
        body = await collect(env)
    except Exception as exc:
        log.error("metrics: %s", exc)
        return _problem(503, "Metrics unavailable", "the outbox or store could not be read")
    return 200, [("Content-Type", CONTENT_TYPE), ("Cache-Control", "no-store")], body


async def _count_bucket_error(env: Any, resolution: str) -> None:
    # A random shard spreads the writes when many buckets fail at once; the scrape sums all shards.
    target = env.OUTBOX.getByName(shard_name(random.randrange(outbox_shards(env))))
    try:
        await target.count(json.dumps({"name": "bucket_errors", "label": resolution, "n": 1}))
    except Exception as exc:
        log.warning("metrics: could not record a bucket error (%s): %s", resolution, exc)


async def record_bucket_error(env: Any, ctx: Any, resolution: str) -> None:
    """Durably count one request whose bucket was unreachable; `resolution` is "open" or "closed"."""
    if resolution not in ("open", "closed"):
        raise ValueError(f"resolution: expected open or closed, got {resolution!r}")
    wait_until = getattr(ctx, "waitUntil", None) if ctx is not None else None
    if callable(wait_until):
        wait_until(asyncio.ensure_future(_count_bucket_error(env, resolution)))
    else:
        await _count_bucket_error(env, resolution)
