"""The request path for rule sets with a lease rule (worker/leases.py holds the leases).

Why apart from worker/limiter.py: the strict path stays one RPC with nothing else to
consider, and everything a lease changes (decide here, the lease call, the renewal in the
background) reads in one place. Leases are spent first (units the bucket already charged
are always good to spend), then the deny cache is asked as on the strict path
(limiter.ask_one_bucket), so a flooding client is answered here either way.
"""
from __future__ import annotations

import logging
from typing import Any

from src.tollgate import clock
from src.tollgate.decision import Decision
from src.tollgate.identity import Identity, client_key
from src.tollgate.lease_wire import encode_ask, split_answer
from src.tollgate.wire import decode_decision, encode_decide
from worker import latency, leases, limiter

log = logging.getLogger("tollgate.leases")


async def ask(env: Any, ctx: Any, settings: Any, identity: Identity, resolution: Any, cost: int, key: str,
              what: str, now: int) -> "limiter.Outcome":
    """Decide from this isolate's leases when every rule can be; else one lease call."""
    rules = resolution.rules
    book = leases.book(env)
    local = book.spend(key, rules, cost, now)
    if local is not None:
        latency.observe(env, ctx, "decision", latency.rules_label(rules), 0)
        if book.should_renew(key, rules, now):
            book.renewing.add(key)
            if not leases.spawn(env, ctx, _renew(env, settings, identity, key, rules, book)):
                book.renewing.discard(key)
        return limiter.outcome(settings, key, rules, local)
    cache = limiter.deny_cache.scope(env)
    cached = cache.lookup(key, what, now)
    if cached is not None:
        latency.observe(env, ctx, "decision", latency.rules_label(rules), 0)
        return limiter.outcome(settings, key, rules, cached)
    carried = book.ask(key, rules, now, denied=cache.unreported.pop(key, None))
    try:
        answer, rtt = await _call(env, settings, identity, key, what + "\n" + encode_ask(carried))
        latency.observe(env, ctx, "decision", latency.rules_label(rules), rtt / 1000)
        text, grants = split_answer(answer)
        decision = decode_decision(text)
    except Exception as exc:  # the bucket (or its answer) failed: on_error decides, the counts wait
        book.lost(carried, key)
        return await limiter.bucket_failed(env, ctx, resolution, exc)
    answered = clock.now_ms()     # the bucket decided about half a round trip after `now`
    book.granted(key, grants, answered, rtt)
    # What the bucket has left once the grants are charged: if a rule is empty, the requests
    # this isolate's leases cannot cover are denied here until one of them re-asks.
    cache.remember(key, what, rules, _after_grants(decision, grants), (now + answered) // 2,
                   settings.config.deny_cache_ms, cost)
    return limiter.outcome(settings, key, rules, decision)


def _after_grants(decision: Decision, grants: tuple) -> Decision:
    if not grants or not decision.allowed:
        return decision
    left = {g.rule: (g.remaining, g.reset_ms) for g in grants}
    results = tuple(r._replace(remaining=min(r.remaining, left[r.name][0]), reset_ms=left[r.name][1])
                    if r.name in left else r for r in decision.results)
    return decision._replace(results=results)


async def _call(env: Any, settings: Any, identity: Identity, key: str, payload: str) -> tuple[str, float]:
    """`ClientBucket.lease(payload)` (with the old name during a secret rotation); its round trip in ms."""
    stub = env.BUCKETS.getByName(key)
    previous = settings.previous_secret
    started = clock.now_ms()
    answer = await (stub.lease(payload) if previous is None else
                    stub.lease(payload, client_key(previous, identity)))
    return answer, float(clock.now_ms() - started)


async def _renew(env: Any, settings: Any, identity: Identity, key: str, rules: tuple, book: "leases.Book") -> None:
    """The next leases for `key`, asked ahead of need: no request rides along."""
    mine = tuple(r for r in rules if r.lease)
    carried = book.ask(key, mine, clock.now_ms(), renew=True)
    try:
        if carried.want or carried.spent or carried.back:
            answer, rtt = await _call(env, settings, identity, key, encode_decide(mine, 0) + "\n" + encode_ask(carried))
            book.granted(key, split_answer(answer)[1], clock.now_ms(), rtt)
    except Exception as exc:  # a renewal is an optimisation: the next request asks itself
        log.warning("lease renewal failed: %s", exc)
        book.lost(carried, key)
    finally:
        book.renewing.discard(key)


async def report(env: Any, clear: bool = False) -> int:
    """Send every unreported spend and return (an operator's flush: admin, metrics); clients
    reported. `clear`: an operator changes state (a reset): drop this isolate's leases too."""
    book = leases.book(env)
    if clear:
        book.held.clear()
    keys = set(book.spent) | set(book.back)
    for key in keys:
        carried = book.ask(key, (), clock.now_ms(), renew=True)
        try:
            await env.BUCKETS.getByName(key).lease(encode_decide((), 0) + "\n" + encode_ask(carried))
        except Exception:   # best effort, as deny_cache.flush
            book.lost(carried, key)
    return len(keys)
