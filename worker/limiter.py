"""Identify the client, resolve its rules, and ask its bucket: the part the
gateway path and /__tollgate/allow share.

One RPC per request: `env.BUCKETS.getByName(client_key).decide(payload)`
with JSON text both ways (src/tollgate/wire.py). When the bucket cannot be
asked, each matching rule's `on_error` decides: one enforcing rule that
fails closed refuses the request (503); otherwise it passes unchecked, and
`worker.metrics.record_bucket_error` counts it. An *overloaded* bucket is
different: its client is flooding it, so the request is denied (429, short
Retry-After) whatever `on_error` says; otherwise the flood would pick the
failure mode and pass unchecked.
"""
from __future__ import annotations

import logging
from typing import Any, NamedTuple
from urllib.parse import unquote

from src.tollgate.config import Resolution
from src.tollgate.decision import Decision
from src.tollgate.headers import overloaded, partition_key, ratelimit_headers
from src.tollgate.identity import Identity, IdentityError, client_key, identify
from src.tollgate.concurrency import CONCURRENCY, renew_interval_ms
from src.tollgate.wire import decode_answer, encode_decide
from src.tollgate import clock
from worker import deny_cache, identity_step, latency, lease_step, metrics, rule_buckets, slots
from worker.replies import HeaderList, Reply, problem_reply
from worker.settings import Settings

log = logging.getLogger("tollgate.limiter")

ALLOWED, DENIED, UNCHECKED, CLOSED, OVERLOADED = "allowed", "denied", "unchecked", "closed", "overloaded"
BUCKET_DOWN_RETRY_AFTER_S = 1
OVERLOADED_RETRY_AFTER_S = 1     # short: the queue drains in well under a second once the flood pauses


class Outcome(NamedTuple):
    verdict: str                 # ALLOWED | DENIED | UNCHECKED (failed open) | CLOSED (failed closed) | OVERLOADED
    decision: Decision | None    # None unless the bucket answered
    headers: HeaderList          # RateLimit-Policy / RateLimit (+ Retry-After when denied)
    held: Any = None             # worker.slots.Held: the concurrency slot the admitted request holds


async def identify_client(settings: Settings, headers: dict[str, str], env: Any = None) -> Identity | Reply:
    """The client's identity, or the 401/400 problem reply to send instead. A JWT is
    verified and a key checked against the known keys here (worker/identity_step.py)."""
    sources = settings.config.identity
    try:
        identity = identify(headers, sources)
    except IdentityError as exc:
        return problem_reply(400, "Bad client identity", f"{exc}.")
    if identity is None:
        names = ", ".join(_describe(s) for s in sources)
        extra = ([("WWW-Authenticate", 'Bearer realm="tollgate"')]
                 if any(s.kind in ("bearer", "jwt") for s in sources) else None)
        return problem_reply(401, "Client not identified", f"Send one of: {names}.", extra)
    layers = settings.config.layers
    if layers.jwt is None and layers.known_keys is None:
        return identity
    return await identity_step.establish(settings, env, headers, identity)


def _describe(source: Any) -> str:
    return {"bearer": "Authorization: Bearer <token>", "ip": "a client IP (CF-Connecting-IP)",
            "xff": "X-Forwarded-For", "jwt": "Authorization: Bearer <JWT>"}.get(source.kind, f"header {source.header}")


def impossible_cost(resolution: Resolution, cost: int) -> Reply | None:
    """400 when `cost` exceeds what an enforcing rule can ever admit at once (its burst or
    count): a 429 would say "retry later", but no later ever admits it. Shared by the
    gateway (route costs) and /allow (a caller's cost)."""
    too_big = next((r for r in resolution.rules if not r.shadow and cost > r.limit.capacity), None)
    if too_big is None:
        return None
    return problem_reply(400, "Bad cost", f'cost {cost} exceeds rule "{too_big.name}", which admits at '
                         f"most {too_big.limit.capacity} at once: it could never be admitted.", rule=too_big.name)


def blocked_reply(rule: str) -> Reply:
    return problem_reply(403, "Client blocked", f'This client is blocked by rule "{rule}".', rule=rule)


async def ask_bucket(env: Any, ctx: Any, settings: Settings, identity: Identity, resolution: Resolution,
                     cost: int, headers: Any = None) -> Outcome:
    """One decision over `resolution.rules` (never empty) for `cost` units. Rules with their
    own `key` are decided in that identity's bucket first (worker/rule_buckets.py: needs `headers`)."""
    if settings.config.rule_keys and headers is not None:
        return await rule_buckets.ask_each(env, ctx, settings, identity, resolution, cost, headers)
    return await ask_one_bucket(env, ctx, settings, identity, resolution, cost)


async def ask_one_bucket(env: Any, ctx: Any, settings: Settings, identity: Identity, resolution: Resolution,
                         cost: int) -> Outcome:
    """One RPC to `identity`'s bucket over `resolution.rules`, unless this isolate's deny
    cache already holds the bucket's denial of the same request (worker/deny_cache.py)."""
    rules = resolution.rules
    key = client_key(settings.identity_secret, identity)
    cache = deny_cache.scope(env)
    now = clock.now_ms()
    what = _payload(rules, cost)
    for rule in rules:
        if rule.lease:          # a rule in lease mode: leases first, then this cache (worker/lease_step.py)
            if all(r.limit.algorithm != CONCURRENCY for r in rules):   # a slot is always the bucket's
                return await lease_step.ask(env, ctx, settings, identity, resolution, cost, key, what, now)
            break
    cached = cache.lookup(key, what, now)
    if cached is not None:      # decided here, in no time: the latency histograms still count it
        latency.observe(env, ctx, "decision", latency.rules_label(rules), 0)
        return outcome(settings, key, rules, cached)
    try:
        stub = env.BUCKETS.getByName(key)
        payload = what + cache.take_report(key) if cache.unreported else what
        started = latency.now()
        previous = settings.previous_secret   # a secret rotation: the bucket may take over from its old name
        answer = await (stub.decide(payload) if previous is None else
                        stub.decide(payload, client_key(previous, identity)))
        latency.observe(env, ctx, "decision", latency.rules_label(rules), latency.now() - started)
        decision, slot = decode_answer(answer)
    except Exception as exc:  # the bucket (or its answer) failed: on_error decides
        return await bucket_failed(env, ctx, resolution, exc)
    # the bucket decided about half a round trip after `now`: its times count from there
    cache.remember(key, what, rules, decision, (now + clock.now_ms()) // 2, settings.config.deny_cache_ms, cost)
    result = outcome(settings, key, rules, decision)
    if slot is None:
        return result
    return result._replace(held=slots.held(settings.identity_secret, key, slot, renew_interval_ms(rules)))


def outcome(settings: Settings, key: str, rules: tuple, decision: Decision) -> Outcome:
    denied = not decision.allowed
    config = settings.config
    headers = ratelimit_headers(rules, decision.results, denied, decision.retry_after_ms,
                                config.legacy_headers, partition_key(key) if config.partition_key else None)
    return Outcome(DENIED if denied else ALLOWED, decision, headers)


_payloads: dict[tuple, str] = {}
MAX_CACHED_PAYLOADS = 4096


def _payload(rules: tuple, cost: int) -> str:
    """`encode_decide(rules, cost)`, cached: a config yields few (rules, cost) pairs, and
    the JSON text is the same for every client (the bucket never sees who asks)."""
    key = (rules, cost)
    text = _payloads.get(key)
    if text is None:
        if len(_payloads) >= MAX_CACHED_PAYLOADS:
            _payloads.clear()
        text = _payloads[key] = encode_decide(rules, cost)
    return text


def _closed_rule(resolution: Resolution) -> str | None:
    return next((r.name for r in resolution.rules if not r.shadow and r.on_error == "closed"), None)


def is_overloaded(exc: BaseException) -> bool:
    """Cloudflare marks a Durable Object error caused by too many queued requests with
    `.overloaded = true` (developers.cloudflare.com/durable-objects/best-practices/error-handling/:
    "should not be retried"). On Pyodide the caller gets a `JsException`, a JsProxy of the
    JS error (pyodide 314 `_pyodide/_core_docs.py`: `class JsException(JsProxy, Exception)`),
    so `.overloaded` reads the JS property; `js_error` is checked too, for older wrappers.
    The property, never the message text, is what counts."""
    for err in (exc, getattr(exc, "js_error", None)):
        if err is not None and getattr(err, "overloaded", None) is True:
            return True
    return False


async def bucket_failed(env: Any, ctx: Any, resolution: Resolution, exc: Exception) -> Outcome:
    if is_overloaded(exc):
        log.warning("bucket overloaded (%s); denying", exc)
        try:
            await metrics.record_bucket_error(env, ctx, "closed")
        except Exception as hook_exc:  # counting must never change the answer
            log.warning("record_bucket_error failed: %s", hook_exc)
        return Outcome(OVERLOADED, None, [])
    closed = _closed_rule(resolution)
    log.error("bucket unavailable (%s: %s); failing %s", type(exc).__name__, exc,
              f'closed (rule "{closed}")' if closed else "open")
    try:
        await metrics.record_bucket_error(env, ctx, "closed" if closed else "open")
    except Exception as hook_exc:  # counting must never change the answer
        log.warning("record_bucket_error failed: %s", hook_exc)
    return Outcome(CLOSED if closed else UNCHECKED, None, [])


def overloaded_reply(status: int = 429, **extensions: Any) -> Reply:
    """429 (or /allow's deny status) with a short Retry-After: the bucket is being flooded."""
    body, headers = overloaded(OVERLOADED_RETRY_AFTER_S, status, **extensions)
    return Reply(status, headers, body)


def closed_reply(resolution: Resolution) -> Reply:
    """503: the bucket is unreachable and an enforcing rule fails closed."""
    rule = _closed_rule(resolution)
    return problem_reply(503, "Rate limiter unavailable",
                         f'The rate limiter could not be reached and rule "{rule}" fails closed; try again shortly.',
                         [("Retry-After", str(BUCKET_DOWN_RETRY_AFTER_S))], rule=rule)


def rule_path(raw_path: str) -> str:
    """The path rules are matched against: percent-decoded, dot segments resolved.

    Why: the origin serves `/v1/%73earch` and `/v1/x/../search` as `/v1/search`;
    matching the raw text would let a client step around a path rule.
    """
    path = unquote(raw_path) if "%" in raw_path else raw_path
    if not path.startswith("/"):
        path = "/" + path
    if "/." not in path:
        return path
    out: list[str] = []
    for segment in path.split("/")[1:]:
        if segment == "..":
            if out:
                out.pop()
        elif segment != ".":
            out.append(segment)
    tail = "/" if path.endswith(("/.", "/..")) and out else ""
    return "/" + "/".join(out) + tail
