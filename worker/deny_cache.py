"""The isolate's deny cache: a client its bucket just denied is answered here until the
retry time, with no RPC (issue 13).

Why: a denied client costs exactly what an admitted one costs (a billed Durable Object
request, and before the journal a row written), and a flood is all denials. A denial is
a fact until its retry time: the bucket only lets the client in again once its state has
refilled, and nothing but time (or an operator) refills it. So the isolate keeps the
bucket's answer for (client, rule set and cost: the decide payload) until `min(retry_after, cap)` and answers
repeats itself: the same 429, the same RateLimit headers with `t` and Retry-After
counting down. Never over-admits: a hit only ever denies.

The cap (`deny_cache_ms`, default 60 s) bounds how long an admin reset, a restore, a raised
override or another isolate's view can take to apply: a reset through this isolate's admin
API drops its entries at once, elsewhere within the cap. A rule counting requests in
flight (a concurrency rule) frees capacity when another request ends, not with time, so a
denial by one is never cached.

Local denials are counted per (client, rule) and sent to the bucket on this isolate's next
RPC to it (`decide`'s second argument), or by `flush` (admin, metrics and dashboard routes
call it before they read), best effort: the counts of an isolate that is evicted before
either are lost.
"""
from __future__ import annotations

import weakref
from typing import Any

from src.tollgate.decision import Decision, RuleResult
from src.tollgate.deny_report import encode_report
from worker import operator_tokens

DEFAULT_CAP_MS = 60_000
REFRESH_WAIT_MS = 1000        # the others keep the denial at most this long while one request asks again
MAX_ENTRIES = 10_000          # per isolate; beyond, the cache starts over (memory stays bounded)
NEVER_CACHED = frozenset(("concurrency",))   # algorithms whose capacity frees without time


class Entry:
    """One cached denial: answered locally until `until_ms` (the retry time, or the cap)."""

    __slots__ = ("until_ms", "retry_ms", "at_ms", "decision", "refreshing", "refresh_at")

    def __init__(self, until_ms: int, retry_ms: int, at_ms: int, decision: Decision) -> None:
        self.until_ms = until_ms        # min(retry time, cap)
        self.retry_ms = retry_ms        # the bucket's retry time: the denial holds at least until then
        self.at_ms = at_ms              # when the bucket was asked
        self.decision = decision
        self.refreshing = False         # past the cap or the retry time, one request is asking again
        self.refresh_at = 0             # when it was sent


class Scope:
    """One isolate's entries and the denials it answered but has not yet reported."""

    def __init__(self) -> None:
        self.entries: dict[tuple, Entry] = {}
        self.by_client: dict[str, set[str]] = {}           # client key -> payloads it has entries for
        self.unreported: dict[str, dict[str, int]] = {}   # client key -> rule -> local denials

    def lookup(self, key: str, what: str, now_ms: int) -> Decision | None:
        """The cached denial for this request, its times counted down; None: ask the bucket.

        At the end of an entry (the cap, or the retry time) one request asks the bucket again
        while the others keep the denial until its answer replaces the entry (at most
        REFRESH_WAIT_MS): a flood renews each entry with one call per isolate, not one per
        request in flight. Past the retry time that can under-admit, never over-admit: the
        others wait at most one round trip, in which the bucket frees at most the rule's rate
        x that round trip. A request long after the retry time (more than one retry interval,
        or REFRESH_WAIT_MS, late) finds the entry stale and asks, as if there were none."""
        if not self.entries:
            return None
        entry = self.entries.get((key, what))
        if entry is None:
            return None
        if now_ms >= entry.until_ms:
            if entry.refreshing:
                if now_ms - entry.refresh_at > REFRESH_WAIT_MS:      # the refresh never came back
                    del self.entries[(key, what)]
                    return None
            elif now_ms >= entry.retry_ms and now_ms - entry.retry_ms > max(entry.retry_ms - entry.at_ms,
                                                                        REFRESH_WAIT_MS):
                del self.entries[(key, what)]                        # stale: the bucket refilled since
                return None
            else:
                entry.refreshing, entry.refresh_at = True, now_ms
                return None
        decision = counted_down(entry.decision, now_ms - entry.at_ms)
        per_rule = self.unreported.setdefault(key, {})
        rule = decision.denied_by or ""
        per_rule[rule] = per_rule.get(rule, 0) + 1
        return decision

    def remember(self, key: str, what: str, rules: tuple, decision: Decision, now_ms: int, cap_ms: int,
                 cost: int = 1) -> None:
        """Keep a denial the bucket answered, unless a rule it involves may free up early.
        `what`: the request's decide payload (rule set and cost; a string hashes once).
        An admission that left an enforcing rule short of `cost` is a denial too, of the next
        request, until that rule's reset time (`exhausted`): the bucket said so, and only
        time frees quota (others can only take more)."""
        if decision.allowed:
            if self.by_client:
                self.forget_client(key)     # the client's state moved: cached headers would be stale
            decision = exhausted(decision, cost)
            if decision is None:
                return
        if decision.retry_after_ms <= 0 or cap_ms <= 0:
            return
        if any(r.limit.algorithm in NEVER_CACHED for r in rules):
            return
        if len(self.entries) >= MAX_ENTRIES:
            self.entries.clear()
            self.by_client.clear()
        retry = now_ms + decision.retry_after_ms
        until = min(retry, now_ms + cap_ms)
        held = self.entries.get((key, what))
        if held is not None and held.until_ms >= until:
            return                          # an answer no newer than what is held (and maybe refreshing)
        self.entries[(key, what)] = Entry(until, retry, now_ms, decision)
        self.by_client.setdefault(key, set()).add(what)

    def take_report(self, key: str) -> str:
        """The local denials of `key` not yet reported, to append to a decide payload ("": none)."""
        counts = self.unreported.pop(key, None)
        return "\n" + encode_report(counts) if counts else ""

    def forget_client(self, key: str) -> None:
        """Drop the client's entries: an admitted answer for it moved its rules' state (other
        rule sets share rules), so the remaining counts a cached denial shows would be stale."""
        for what in self.by_client.pop(key, ()):
            self.entries.pop((key, what), None)


def exhausted(decision: Decision, cost: int) -> Decision | None:
    """The denial an admitted answer implies for the next request of `cost`: an enforcing rule
    left with fewer units than that is denied until its reset (more quota), or None."""
    short = [r for r in decision.results if not r.shadow and r.remaining < cost and r.reset_ms > 0]
    if not short:
        return None
    by = max(short, key=lambda r: r.reset_ms)
    results = tuple(RuleResult(r.name, False, r.shadow, r.remaining, r.reset_ms, r.reset_ms) if r in short else r
                    for r in decision.results)
    return Decision(False, by.name, by.reset_ms, results, {})


def counted_down(decision: Decision, elapsed_ms: int) -> Decision:
    """The bucket's denial as it reads `elapsed_ms` later: every wait shorter by that much
    (never below 1 ms: it is still a denial), remaining as the bucket said."""
    if elapsed_ms <= 0:
        return decision
    results = tuple(RuleResult(r.name, r.allowed, r.shadow, r.remaining, max(0, r.reset_ms - elapsed_ms),
                               max(0, r.retry_after_ms - elapsed_ms)) for r in decision.results)
    return Decision(False, decision.denied_by, max(1, decision.retry_after_ms - elapsed_ms), results, {})


_global = Scope()
_local_scopes: "weakref.WeakKeyDictionary[Any, Scope]" = weakref.WeakKeyDictionary()


def scope(env: Any) -> Scope:
    """The isolate's cache. On the platform one isolate runs one Worker: one scope. The local
    runtime runs one server per `LocalEdge` (several in a test process), each its own
    isolate with its own `Env`: there the scope follows the Env. A simulator of several
    isolates in one process (scripts/edge_sim.py) gives each env its own `tollgate_isolate`."""
    own = getattr(env, "tollgate_isolate", None)
    if isinstance(own, Scope):
        return own
    if type(env).__module__.startswith("src.localedge"):
        found = _local_scopes.get(env)
        if found is None:
            found = _local_scopes[env] = Scope()
        return found
    return _global


async def flush(env: Any, clear: bool = False) -> int:
    """Send every unreported local denial to its bucket (one RPC per client), so what an admin
    or a scrape reads next is exact; `clear` also drops the entries (an admin change, such as a
    reset, applies in this isolate at once). Returns the clients reported."""
    cache = scope(env)
    if clear:
        cache.entries.clear()
        cache.by_client.clear()
    pending, cache.unreported = cache.unreported, {}
    for key, counts in pending.items():
        try:
            await env.BUCKETS.getByName(key).count_denied(encode_report(counts))
        except Exception:  # best effort: a lost report loses denial counts, never a decision
            pass
    return len(pending)


def operator_asks(env: Any, authorization: str | None) -> bool:
    """True when the request carries ADMIN_TOKEN or METRICS_TOKEN: only an operator's read
    flushes the cache (an anonymous request must not be able to empty it during a flood)."""
    return operator_tokens.is_operator(env, authorization)
