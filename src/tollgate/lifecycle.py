"""When an idle bucket may delete itself: pure arithmetic over its rows and rules.

Why a bucket may go: a client seen once (every IP on the internet) would
otherwise keep a Durable Object with SQLite rows forever, billed. Deleting it
is safe only when a fresh bucket would decide exactly as this one would:

- every rule's limiter state is back to full (`full_at`: the instant after
  which `step` treats the state as no state at all), judged with every limit
  the rule was seen with (two Worker versions may be live during a deploy);
- the accounting hour of every row has closed: a fresh bucket starts its
  counters at 0 with version 1, and the store keeps the highest version per
  (client, rule, hour), so a fresh bucket in the same hour would be ignored
  (or would overwrite the old counts); a later hour is a new key;
- restored usage (restore.py) no longer falls inside any window;
- and, checked by the caller, every change is confirmed by the outbox and no
  longer held there (so it reached the store).

Core rules apply: standard library only, the clock is passed in.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from src.tollgate.algorithms import FIXED_TAG, GCRA, SLIDING_WINDOW, Limit, State
from src.tollgate.envvars import env_bool, env_int
from src.tollgate.usage import ACCOUNTING_PERIOD_MS

# Without a known limit, restored usage is irrelevant after the restore horizon
# (durable_objects/restore.py keeps a month of hours).
RESTORED_HORIZON_MS = 32 * 86_400_000
DEFAULT_RECHECK_MS = 15 * 60_000      # outbox still holds the client's usage: ask again later
LIMITS_PER_RULE = 4                   # distinct limits remembered per rule (deploys, edits)


def full_at(limit: Limit, state: State | None) -> int:
    """The first instant (ms) from which `state` decides like no state under `limit`; 0: already."""
    if state is None:
        return 0
    s0, s1, s2 = state
    if limit.algorithm == GCRA:
        if s2 > -3:
            return 0                    # another algorithm's state: GCRA reads it as none
        stored = -s2 - 2
        return s0 + -(-s1 // stored)    # the backlog (tat - now) * count + remainder reaches 0
    period = limit.period_ms
    if limit.algorithm == SLIDING_WINDOW:
        if s2 < 0 or s0 % period:
            return 0
        if s2:
            return s0 + 2 * period      # this window's count weighs on the next window too
        return s0 + period if s1 else 0
    if s2 != FIXED_TAG or s1 == 0:
        return 0
    return (s0 // period + 1) * period  # the first aligned window after the stored one


def longest_window_ms(limits: Iterable[Limit]) -> int:
    """The longest time any of `limits` can remember usage (restored usage, windows)."""
    return max((2 * lim.period_ms for lim in limits), default=0)


def cleanup_due(rows: Mapping[str, tuple[State | None, int]], limits: Mapping[str, Sequence[Limit]],
                restored_periods: Iterable[int]) -> int | None:
    """When the bucket may be deleted (epoch ms), or None while a rule's state cannot be judged.

    `rows`: rule -> (limiter state, accounting period start) as stored; `limits`: rule ->
    every limit it was decided with; `restored_periods`: period starts of restored usage
    not yet charged.
    """
    due = 0
    for rule, (state, period) in rows.items():
        due = max(due, period + ACCOUNTING_PERIOD_MS)
        if state is None:
            continue
        known = limits.get(rule)
        if not known:
            return None                 # a state no known rule wrote: keep it
        due = max(due, max(full_at(lim, state) for lim in known))
    every = [lim for ls in limits.values() for lim in ls]
    keep_restored = longest_window_ms(every) if every else RESTORED_HORIZON_MS
    for start in restored_periods:
        due = max(due, start + ACCOUNTING_PERIOD_MS + keep_restored)
    return due


def remember(limits: dict[str, list[Limit]], rules: Iterable[Any]) -> bool:
    """Add each rule's limit to `limits` (most recent last, at most LIMITS_PER_RULE); True if new."""
    changed = False
    for rule in rules:
        seen = limits.setdefault(rule.name, [])
        if rule.limit in seen:
            continue
        seen.append(rule.limit)
        del seen[:-LIMITS_PER_RULE]
        changed = True
    return changed


def remember_encoded(limits: dict[str, list[Limit]], encoded: Any) -> bool:
    """`remember` for limits another bucket kept (`encode_limits`, a secret rotation)."""
    changed = False
    for name, ls in decode_limits(encoded).items():
        for lim in ls:
            seen = limits.setdefault(name, [])
            if lim not in seen:
                seen.append(lim)
                del seen[:-LIMITS_PER_RULE]
                changed = True
    return changed


def encode_limits(limits: Mapping[str, Sequence[Limit]]) -> dict[str, list[list]]:
    return {name: [list(lim) for lim in ls] for name, ls in sorted(limits.items())}


def decode_limits(obj: Any) -> dict[str, list[Limit]]:
    """What `encode_limits` wrote; anything unreadable is forgotten (then states are kept)."""
    out: dict[str, list[Limit]] = {}
    if not isinstance(obj, dict):
        return out
    for name, items in obj.items():
        try:
            out[str(name)] = [Limit(str(a), int(c), int(p), int(b)) for a, c, p, b in items]
        except (TypeError, ValueError):
            continue
    return out


def idle_cleanup(env: Any) -> bool:
    """IDLE_CLEANUP (default true): idle buckets delete themselves once that loses nothing."""
    return env_bool(env, "IDLE_CLEANUP", True)


def cleanup_recheck_ms(env: Any) -> int:
    """IDLE_CLEANUP_RECHECK_MS: how long to wait while the outbox still holds a client's usage."""
    return env_int(env, "IDLE_CLEANUP_RECHECK_MS", DEFAULT_RECHECK_MS, minimum=1000)
