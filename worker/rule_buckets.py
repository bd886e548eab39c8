"""Per-rule identity: one request decided against two (or more) buckets.

A rule with `key = "ip"` (or another source) counts per that identity, so one
request can be held to "10000/day per API key" and "600/minute per IP" at once.
Two Durable Objects cannot decide atomically together, so the order is fixed
and the bound is stated:

1. the buckets of rules with their own key are asked first, one after the other
   (in rule order, grouped by identity); the first denial ends the request: the
   request's own bucket is never asked, so **a request denied by the IP rules
   consumes nothing in the key bucket**;
2. the request's own bucket is asked last.

The bound: a request admitted by the per-rule buckets and then denied by the
request's own bucket has been counted in the per-rule buckets (at most its cost,
once per such denial); never the other way round. So per-IP rules can over-count
a client the key rules deny (stricter, never looser), and no bucket ever admits
more than its own rules allow.

A rule whose key is absent from the request (no such header) counts per the
request's own identity. The second RPC costs a round trip to another object:
README "Identity layers" gives the measured cost.
"""
from __future__ import annotations

from typing import Any, Mapping

from src.tollgate.config import Resolution
from src.tollgate.decision import Decision
from src.tollgate.headers import partition_key, ratelimit_headers
from src.tollgate.identity import Identity, IdentityError, client_key, identify
from worker import identity_step, limiter
from worker.replies import Reply


async def groups(settings: Any, env: Any, identity: Identity, resolution: Resolution,
                 headers: Mapping[str, str]) -> list[tuple[Identity, tuple]]:
    """[(identity, rules)], per-rule identities first, the request's own identity last."""
    keyed: dict[Identity, list] = {}
    own: list = []
    keys = settings.config.rule_keys
    for rule in resolution.rules:
        source = keys.get(rule.name)
        who = None
        if source is not None:
            try:
                who = identify(headers, (source,))
            except IdentityError:
                who = None            # malformed: counted as the request's own identity
            if who is not None:
                who = await identity_step.establish(settings, env, headers, who, source.claim or None)
                if isinstance(who, Reply):   # unknown key, bad token: the shared per-IP client, never a fresh one
                    ip = identity_step.client_ip(headers, settings.config)
                    who = Identity(identity_step.UNKNOWN, ip.value) if ip is not None else None
        if who is None or str(who) == str(identity):
            own.append(rule)
        else:
            keyed.setdefault(who, []).append(rule)
    out = [(who, tuple(rules)) for who, rules in keyed.items()]
    if own:
        out.append((identity, tuple(own)))
    return out


async def ask_each(env: Any, ctx: Any, settings: Any, identity: Identity, resolution: Resolution, cost: int,
                   headers: Mapping[str, str]) -> "limiter.Outcome":
    """Ask each group's bucket in order; stop at the first that does not admit."""
    plan = await groups(settings, env, identity, resolution, headers)
    rules_all, results, unchecked, held = [], [], False, None
    for who, rules in plan:
        outcome = await limiter.ask_one_bucket(env, ctx, settings, who, Resolution(rules, cost, None), cost)
        held = outcome.held or held     # concurrency rules count per the request's own identity: the last bucket
        if outcome.verdict == limiter.UNCHECKED:
            unchecked = True
            continue
        if outcome.verdict != limiter.ALLOWED:
            return outcome                 # denied, closed or overloaded: later buckets are not asked
        rules_all.extend(rules)
        results.extend(outcome.decision.results)
    if unchecked:
        return limiter.Outcome(limiter.UNCHECKED, None, [], held)
    config = settings.config
    key = client_key(settings.identity_secret, identity)
    order = {rule.name: i for i, rule in enumerate(resolution.rules)}      # headers in config order
    pairs = sorted(zip(rules_all, results), key=lambda pair: order[pair[0].name])
    decision = Decision(True, None, 0, tuple(r for _, r in pairs), {})
    headers_out = ratelimit_headers(tuple(rule for rule, _ in pairs), decision.results, False, 0,
                                    config.legacy_headers, partition_key(key) if config.partition_key else None)
    return limiter.Outcome(limiter.ALLOWED, decision, headers_out, held)
