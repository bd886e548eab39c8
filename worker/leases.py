"""The isolate's leased budgets (issue 13, `mode = "lease"`): spend them here, renew ahead.

Why: a hot client's every request is otherwise a round trip to one object somewhere in the
world. A lease is units of a rule its bucket already charged (durable_objects/lease_desk.py),
so spending it here never over-admits beyond the bound src/tollgate/lease.py proves
(overshoot <= rate x T, T = max_overshoot x period): a request is decided here only when
every rule it matches is a lease rule with enough live units, otherwise it takes the RPC,
which carries this isolate's asks (new leases, units spent, units given back).

Renewal ahead of need: when a rule's live units fall below half its last lease, or the lease
is within two round trips of its end, one background call (ctx.waitUntil) asks for the next
lease while requests keep spending the current one, so a steady hot client never waits.

What is best effort, and bounded: units spent here reach the bucket's usage counters with
this isolate's next call for the client (a request or a renewal) or an operator's flush;
an isolate evicted before that loses at most one lease of counts per client and rule.
"""
from __future__ import annotations

import asyncio
from typing import Any

from src.tollgate.decision import Decision, RuleResult
from src.tollgate.lease import lease_units, lifetime_ms, worth_leasing
from src.tollgate.lease_wire import Ask, Grant
from worker.isolate import PerIsolate

MAX_METERED = 10_000     # (client, rule) pairs an isolate meters; beyond, it starts over (memory stays bounded)


class Held:
    """One lease this isolate holds for a client's rule."""

    __slots__ = ("lease_id", "left", "expires_ms", "units", "remaining", "reset_ms", "granted_ms")

    def __init__(self, grant: Grant, now_ms: int) -> None:
        self.lease_id, self.left, self.units = grant.lease_id, grant.units, grant.units
        self.expires_ms, self.remaining, self.reset_ms = grant.expires_ms, grant.remaining, grant.reset_ms
        self.granted_ms = now_ms


class Meter:
    """Units this isolate was asked for per rule, over the last lifetime: the observed rate."""

    __slots__ = ("start_ms", "count", "rate")

    def __init__(self, now_ms: int) -> None:
        self.start_ms, self.count, self.rate = now_ms, 0, 0.0

    def add(self, units: int, now_ms: int, window_ms: int) -> None:
        elapsed = now_ms - self.start_ms
        if elapsed >= window_ms:
            self.rate = self.count * 1000.0 / elapsed
            self.start_ms, self.count = now_ms, 0
        self.count += units

    def per_second(self, now_ms: int, window_ms: int) -> float:
        """The last full window's rate, or this window's if it is already higher."""
        return max(self.rate, self.count * 1000.0 / max(window_ms, now_ms - self.start_ms, 1))


class Book:
    """Every lease, meter and unreported spend of one isolate, per (client key, rule)."""

    def __init__(self) -> None:
        self.held: dict[tuple[str, str], list[Held]] = {}
        self.meters: dict[tuple[str, str], Meter] = {}
        self.spent: dict[str, dict[str, list[int]]] = {}       # key -> rule -> [requests, units]
        self.back: dict[str, list[tuple[str, int, int]]] = {}  # key -> ended leases' unspent units
        self.renewing: set[str] = set()
        self.rtt_ms = 50.0                                      # this isolate's round trip, smoothed

    # ---------------------------------------------------------------- the request path
    def spend(self, key: str, rules: tuple, cost: int, now_ms: int) -> Decision | None:
        """Admit `cost` from live leases of every rule, or None (then nothing was spent)."""
        for rule in rules:
            self._meter(key, rule, cost, now_ms)
        if not all(rule.lease for rule in rules):
            return None
        for rule in rules:
            if self._live_units(key, rule.name, now_ms) < cost:
                return None
        results = []
        for rule in rules:
            results.append(self._take(key, rule, cost))
        counts = self.spent.setdefault(key, {})
        for rule in rules:
            c = counts.setdefault(rule.name, [0, 0])
            c[0] += 1
            c[1] += cost
        return Decision(True, None, 0, tuple(results), {})

    def ask(self, key: str, rules: tuple, now_ms: int, renew: bool = False,
            denied: dict[str, int] | None = None) -> Ask:
        """What the next call for `key` carries: leases wanted now, units spent, units given back."""
        want = []
        for rule in rules:
            if not rule.lease:
                continue
            meter = self.meters.get((key, rule.name))
            rate = meter.per_second(now_ms, lifetime_ms(rule.limit, rule.lease)) if meter is not None else 0.0
            if worth_leasing(rule.limit, rule.lease, rate) and self._needs_more(key, rule, now_ms):
                want.append((rule.name, lease_units(rule.limit, rule.lease, rate), rule.lease))
        spent = tuple((name, r, u) for name, (r, u) in sorted(self.spent.pop(key, {}).items()))
        back = tuple(self.back.pop(key, ()))
        return Ask(renew, tuple(want), spent, back, tuple(sorted((denied or {}).items())))

    def granted(self, key: str, grants: tuple[Grant, ...], now_ms: int, rtt_ms: float | None = None) -> None:
        for grant in grants:
            self.held.setdefault((key, grant.rule), []).append(Held(grant, now_ms))
        if rtt_ms is not None:
            self.rtt_ms = 0.8 * self.rtt_ms + 0.2 * rtt_ms

    def lost(self, ask: Ask, key: str) -> None:
        """A call failed: what it carried is kept for the next one (counts are not dropped)."""
        counts = self.spent.setdefault(key, {})
        for name, requests, units in ask.spent:
            c = counts.setdefault(name, [0, 0])
            c[0] += requests
            c[1] += units
        self.back.setdefault(key, []).extend(ask.back)

    def should_renew(self, key: str, rules: tuple, now_ms: int) -> bool:
        """A background renewal is due: a lease rule runs low and none is in flight."""
        if key in self.renewing:
            return False
        return any(rule.lease and self.held.get((key, rule.name)) and self._needs_more(key, rule, now_ms)
                   for rule in rules)

    # ---------------------------------------------------------------- internals
    def _meter(self, key: str, rule: Any, cost: int, now_ms: int) -> None:
        if rule.lease:
            meter = self.meters.get((key, rule.name))
            if meter is None:
                if len(self.meters) >= MAX_METERED:
                    self._start_over(now_ms)
                meter = self.meters[(key, rule.name)] = Meter(now_ms)
            meter.add(cost, now_ms, lifetime_ms(rule.limit, rule.lease))

    def _start_over(self, now_ms: int) -> None:
        """Forget every meter and every lease that ended: a long tail of clients must not grow
        the isolate's memory; live leases stay (their units are charged)."""
        self.meters.clear()
        self.held = {k: [h for h in v if now_ms < h.expires_ms and h.left > 0]
                     for k, v in self.held.items() if any(now_ms < h.expires_ms and h.left > 0 for h in v)}

    def _live_units(self, key: str, name: str, now_ms: int) -> int:
        leases = self.held.get((key, name))
        if not leases:
            return 0
        live = []
        for held in leases:
            if now_ms < held.expires_ms and held.left > 0:
                live.append(held)
            elif held.left > 0:          # ended unspent: give it back with the next call
                self.back.setdefault(key, []).append((name, held.lease_id, held.left))
        if len(live) != len(leases):
            self.held[(key, name)] = live
        return sum(h.left for h in live)

    def _take(self, key: str, rule: Any, cost: int) -> RuleResult:
        leases = self.held[(key, rule.name)]
        need = cost
        for held in leases:                  # oldest first: it ends first
            used = min(need, held.left)
            held.left -= used
            need -= used
            if need == 0:
                break
        newest = leases[-1]
        left = sum(h.left for h in leases)
        return RuleResult(rule.name, True, False, newest.remaining + left, newest.reset_ms, 0)

    def _needs_more(self, key: str, rule: Any, now_ms: int) -> bool:
        leases = [h for h in self.held.get((key, rule.name), ()) if now_ms < h.expires_ms]
        if not leases:
            return True
        newest = leases[-1]
        left = sum(h.left for h in leases)
        return left * 2 <= newest.units or newest.expires_ms - now_ms <= 2 * self.rtt_ms


_books = PerIsolate(Book)


def book(env: Any) -> Book:
    """The isolate's book (a simulator of many isolates gives each env `tollgate_leases`)."""
    own = getattr(env, "tollgate_leases", None)
    return own if isinstance(own, Book) else _books.get(env)


def spawn(env: Any, ctx: Any, coro: Any) -> bool:
    """Run `coro` after the answer (ctx.waitUntil); False when there is nowhere to run it."""
    run = getattr(env, "tollgate_spawn", None)
    if callable(run):
        run(coro)
        return True
    wait_until = getattr(ctx, "waitUntil", None) if ctx is not None else None
    if not callable(wait_until):
        coro.close()
        return False
    wait_until(asyncio.ensure_future(coro))
    return True
