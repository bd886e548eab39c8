"""The numbers the dashboard page shows, gathered from durable places at request time.

Why these sources: like /__tollgate/metrics, nothing comes from one isolate's
memory. Every outbox shard answers `stats()` (depth, oldest unflushed change,
latency sums) and `recent()` (its last hours of per-client counts, `seen`),
the "metrics" object the flush bookkeeping, and the usage store its own view of
the same hours (D1; the HTTP sink is write-only and says None). The page shows
the outbox's and the store's figures side by side: the outbox is seconds behind
the buckets, the store a flush behind the outbox.

"The last 24 hours" is the 24 UTC accounting hours up to now (the current one
included): usage is counted per hour (src/tollgate/usage.py), so that is the
finest window either source can sum exactly.
"""
from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from src.tollgate import clock
from src.tollgate.identity import Identity, IdentityError, client_key
from src.tollgate.quantiles import overflowed, quantile
from src.tollgate.snapshots import COUNTERS, shard_name
from src.tollgate.topology import METRICS_OBJECT, outbox_shards
from src.tollgate.usage import ACCOUNTING_PERIOD_MS, period_start
from worker.latency import BOUNDS_MS, KINDS
from worker.settings import Settings

log = logging.getLogger("tollgate.dashboard")

WINDOW_HOURS = 24
TOP_CLIENTS = 10
PREFIX_CHARS = 12            # as `scripts/reconcile drift` prints a client; `--client` takes the prefix
QUANTILES = (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))
_PERIODS = ((86_400_000, "day"), (3_600_000, "hour"), (60_000, "minute"), (1000, "second"))


async def _call(env: Any, name: str, method: str, *args: str) -> dict | None:
    try:
        return json.loads(await getattr(env.OUTBOX.getByName(name), method)(*args))
    except Exception as exc:
        log.warning("dashboard: outbox %s %s failed: %s", name, method, exc)
        return None


async def _store_recent(env: Any, since_ms: int) -> tuple[str, dict | None, str | None]:
    """(store kind, per-rule counts or None, error text or None)."""
    from worker.stores import open_store, store_kind
    kind = store_kind(env)
    try:
        return kind, await open_store(env).recent_totals(since_ms), None
    except Exception as exc:
        log.warning("dashboard: usage store unreadable: %s", exc)
        return kind, None, f"{type(exc).__name__}: {exc}"[:200]


async def gather(env: Any, settings: Settings) -> dict[str, Any]:
    """Everything the page shows, as plain JSON values (also served as /__tollgate/dashboard/data)."""
    now = clock.now_ms()
    since = period_start(now) - (WINDOW_HOURS - 1) * ACCOUNTING_PERIOD_MS
    names = [shard_name(i) for i in range(outbox_shards(env))]
    recent_args = json.dumps({"since_ms": since, "top": TOP_CLIENTS})
    results = await asyncio.gather(*(_call(env, n, "stats") for n in names), _call(env, METRICS_OBJECT, "stats"),
                                   *(_call(env, n, "recent", recent_args) for n in names),
                                   _store_recent(env, since))
    stats, book = results[:len(names)], results[len(names)] or {}
    recent, (store_kind, store_rules, store_error) = results[len(names) + 1:-1], results[-1]
    complete = all(s is not None for s in stats) and all(r is not None for r in recent)
    outbox_rules = _sum_rules(r["rules"] for r in recent if r is not None) if complete else None
    return {
        "now_ms": now, "since_ms": since, "window_hours": WINDOW_HOURS,
        "shards": len(names), "shards_up": sum(1 for s, r in zip(stats, recent) if s is not None and r is not None),
        "store": {"kind": store_kind, "readable": store_rules is not None, "error": store_error},
        "rules": _rules(settings, outbox_rules, store_rules),
        "denied_clients": _denied(settings, [r for r in recent if r is not None]),
        "outbox": _outbox(stats, book, now),
        "latency": _latency([s for s in stats if s is not None]),
        "latency_hours": _latency_hours([r for r in recent if r is not None], since),
    }


def _sum_rules(per_shard: Any) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for rules in per_shard:
        for rule, counts in rules.items():
            into = out.setdefault(rule, dict.fromkeys(COUNTERS, 0))
            for col, n in zip(COUNTERS, counts):
                into[col] += int(n)
    return out


def limit_text(rule: Any) -> str:
    """A rule's limit as the config writes it: `5/minute`, `20 per 10 seconds`, burst if it differs."""
    limit = rule.limit
    if limit.algorithm == "concurrency":
        return f"{limit.count} concurrent"
    text = f"{limit.count} per {limit.period_ms / 1000:g} seconds"
    for ms, unit in _PERIODS:
        if limit.period_ms == ms:
            text = f"{limit.count}/{unit}"
            break
    if limit.algorithm == "gcra" and limit.burst != limit.count:
        text += f", burst {limit.burst}"
    return text


def _rules(settings: Settings, outbox: dict | None, store: dict | None) -> list[dict[str, Any]]:
    """One row per configured rule (in config order), then any rule the data names that the config
    no longer has (renamed or removed: its counts are still in the window)."""
    zero = dict.fromkeys(COUNTERS, 0)
    rows = [{"rule": r.name, "limit": limit_text(r), "shadow": r.shadow, "configured": True}
            for r in settings.config.rules]
    known = {r["rule"] for r in rows}
    for extra in sorted(set(outbox or {}) | set(store or {})):
        if extra not in known:
            rows.append({"rule": extra, "limit": None, "shadow": False, "configured": False})
    for row in rows:
        row["outbox"] = None if outbox is None else outbox.get(row["rule"], zero)
        row["store"] = None if store is None else store.get(row["rule"], zero)
    return rows


def client_labels(settings: Settings) -> dict[str, str]:
    """Client key -> the operator's label, from the overrides' `label`s (keys hashed as the
    Worker hashes a client; the raw key never leaves this function)."""
    out = {}
    config = settings.config
    for ident, label in getattr(config, "labels", {}).items():
        try:
            out[client_key(settings.identity_secret, Identity.parse(ident, config.ipv6_prefix))] = label
        except IdentityError:
            continue
    return out


def _denied(settings: Settings, recent: list[dict]) -> list[dict[str, Any]]:
    labels = client_labels(settings)
    merged: dict[str, list] = {}          # a client in two shards (OUTBOX_SHARDS changed): one row
    for r in recent:
        for client, denied, by_rule in r.get("denied", []):
            into = merged.setdefault(client, [0, {}])
            into[0] += denied
            for rule, n in by_rule.items():
                into[1][rule] = into[1].get(rule, 0) + n
    rows = sorted(merged.items(), key=lambda kv: (-kv[1][0], kv[0]))[:TOP_CLIENTS]
    return [{"client": client[:PREFIX_CHARS], "label": labels.get(client), "denied": denied, "by_rule": by_rule}
            for client, (denied, by_rule) in rows]


def _outbox(stats: list, book: dict, now: int) -> dict[str, Any]:
    up = [s for s in stats if s is not None]
    oldest = [s["oldest_ms"] for s in up if s.get("oldest_ms") is not None]
    return {"depth": sum(int(s.get("depth") or 0) for s in up), "leased": sum(int(s.get("leased") or 0) for s in up),
            "lag_s": max(0.0, (now - min(oldest)) / 1000) if oldest else 0.0,
            "last_flush_ms": book.get("gauges", {}).get("last_flush_success_ms")}


def _percentiles(slots: list[int]) -> dict[str, Any] | None:
    """Count, mean and QUANTILES (ms) of one histogram ([count per bucket..., sum µs]); None when empty."""
    counts, total_us = slots[:-1], slots[-1]
    n = sum(counts)
    if n == 0 or len(counts) != len(BOUNDS_MS) + 1:
        return None
    row: dict[str, Any] = {"count": n, "mean_ms": total_us / n / 1000}
    for name, q in QUANTILES:
        row[f"{name}_ms"] = quantile(q, BOUNDS_MS, counts)
        row[f"{name}_over"] = overflowed(q, counts)
    return row


def _latency_hours(recent: list[dict], since: int) -> list[dict[str, Any]]:
    """Per kind and rule set, one entry per hour of the window (oldest first; count 0: nothing observed),
    from the shards' hourly sums (durable_objects/latency_hours.py)."""
    merged: dict[tuple[str, str], dict[int, list[int]]] = {}
    for r in recent:
        for kind, series in (r.get("latency") or {}).items():
            for rules, hours in series.items():
                for hour, slots in hours.items():
                    into = merged.setdefault((kind, rules), {}).setdefault(int(hour), [0] * len(slots))
                    for i, n in enumerate(slots):
                        into[i] += int(n)
    order = {k: i for i, k in enumerate(KINDS)}
    out = []
    for (kind, rules), hours in sorted(merged.items(), key=lambda kv: (order.get(kv[0][0], 9), kv[0][1])):
        starts = [since + i * ACCOUNTING_PERIOD_MS for i in range(WINDOW_HOURS)]
        out.append({"kind": kind, "rules": rules,
                    "hours": [{"period_start_ms": h, **(_percentiles(hours[h]) or {"count": 0})} if h in hours
                              else {"period_start_ms": h, "count": 0} for h in starts]})
    return out


def _latency(stats: list) -> list[dict[str, Any]]:
    """Per kind and rule set: count, mean and percentiles (ms) of everything the shards have summed
    since they began counting (durable_objects/outbox.py `latency`, what /__tollgate/metrics exports)."""
    merged: dict[tuple[str, str], list[int]] = {}
    for s in stats:
        for kind, series in (s.get("latency") or {}).items():
            for rules, slots in series.items():
                into = merged.setdefault((kind, rules), [0] * len(slots))
                for i, n in enumerate(slots):
                    into[i] += int(n)
    order = {k: i for i, k in enumerate(KINDS)}
    out = []
    for (kind, rules), slots in sorted(merged.items(), key=lambda kv: (order.get(kv[0][0], 9), kv[0][1])):
        row = _percentiles(slots)
        if row is not None:
            out.append({"kind": kind, "rules": rules, **row})
    return out
