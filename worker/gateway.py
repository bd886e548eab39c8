"""The Worker's fetch: route, decide, forward; every failure a problem+json.

Gateway path (everything outside `/__tollgate/`): identify the client,
resolve its rules and cost, ask its bucket once, then forward to ORIGIN_URL
with the RateLimit headers added to the origin's answer, or answer 429.
No rule matched: forward without asking anyone. Without ORIGIN_URL the
Worker is a pure decision service and every path answers like /allow.

Per request: settings come from the per-isolate cache, patterns were
compiled at load, the Worker reads the clock only to time the decision and
the origin (worker/latency.py; the bucket reads it once per decision), and the
body is read only for a request that goes on.
"""
from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from worker import deny_cache, latency, lease_step, operator_tokens, slots
from worker.forwarding import UNCHECKED_HEADER, origin_url, request_headers, response_headers
from worker.admission import admit
from worker.limiter import rule_path
from worker.platform import Incoming, OriginTimeout, OriginUnreachable, fetch_origin, response
from worker.replies import Reply, not_found, problem_reply
from worker.routes import admin, allow, dashboard, health, metrics_route
from worker.settings import Settings, SettingsError, load

log = logging.getLogger("tollgate.gateway")

RESERVED = "/__tollgate/"
INTERNAL_ERROR = problem_reply(500, "Internal error",
                               "Tollgate could not handle this request; the error is in the Worker's log.")
BODYLESS_METHODS = frozenset(("GET", "HEAD"))


async def handle(request: Any, env: Any, ctx: Any) -> Any:
    """`Default.fetch`: never raises, never shows a traceback to the client."""
    try:
        reply = await dispatch(request, env, ctx)
    except Exception:
        log.exception("unhandled error in fetch")
        reply = INTERNAL_ERROR
    try:
        return response(reply.status, reply.headers, reply.body)
    except Exception:
        log.exception("could not build the response (status %s)", reply.status)
        return response(500, INTERNAL_ERROR.headers, INTERNAL_ERROR.body)


async def dispatch(request: Any, env: Any, ctx: Any) -> Reply:
    incoming = Incoming(request)
    parts = urlsplit(incoming.url)
    path = parts.path or "/"
    try:
        settings = load(env)
    except SettingsError as exc:
        return misconfigured(exc, env, incoming)
    if path.startswith(RESERVED):
        return await reserved(incoming, path, parts.query, settings, env, ctx)
    if settings.origin is None:
        return await allow.handle_allow(incoming, path, parts.query, settings, env, ctx, at_root=True)
    return await proxy(incoming, parts, settings, env, ctx)


async def reserved(incoming: Incoming, path: str, query: str, settings: Settings, env: Any, ctx: Any) -> Reply:
    if path == allow.PREFIX or path.startswith(allow.PREFIX + "/"):
        return await allow.handle_allow(incoming, path, query, settings, env, ctx)
    if path == slots.RELEASE_PATH:
        body = await incoming.body() if incoming.method == "POST" else b""
        return await slots.handle_release(incoming.method, incoming.headers, body, settings.identity_secret, env)
    if path == "/__tollgate/health":
        return health.handle_health(incoming.method, settings)
    if deny_cache.operator_asks(env, incoming.headers.get("authorization")):   # admin, metrics, dashboard:
        await deny_cache.flush(env, clear=incoming.method != "GET")        # exact counts; a reset applies now
        await lease_step.report(env, clear=incoming.method != "GET")       # units spent from leases, too
    if path == "/__tollgate/metrics":
        return await metrics_route.handle_metrics(incoming.method, incoming.headers.get("authorization"), env)
    if path.startswith(admin.PREFIX):
        return await admin.handle_admin(incoming, path, settings, env, ctx)
    if path == dashboard.PREFIX or path.startswith(dashboard.PREFIX + "/"):
        return await dashboard.handle_dashboard(incoming, path, settings, env)
    return not_found(path)


async def proxy(incoming: Incoming, parts: Any, settings: Settings, env: Any, ctx: Any) -> Reply:
    started = latency.now()
    method = incoming.method
    admitted = await admit(env, ctx, settings, incoming, method, rule_path(parts.path or "/"))
    if isinstance(admitted, Reply):
        return admitted
    if admitted.held is not None:     # a concurrency slot: held until the answer is delivered (worker/slots.py)
        return await slots.hold_during(env, ctx, admitted.held,
                                       lambda: forward(incoming, parts, settings, env, ctx, admitted, started))
    return await forward(incoming, parts, settings, env, ctx, admitted, started)


async def forward(incoming: Incoming, parts: Any, settings: Settings, env: Any, ctx: Any, admitted: Any,
                  started: float) -> Reply:
    """The admitted request to the origin, and its answer with the RateLimit headers added."""
    method = incoming.method
    resolution, added, unchecked = admitted.resolution, admitted.headers, admitted.unchecked
    body = None if method in BODYLESS_METHODS else await incoming.body()
    headers = request_headers(incoming.header_items, incoming.headers.get("cf-connecting-ip"),
                              parts.scheme or "https", parts.netloc or None)
    if unchecked:
        headers.append((UNCHECKED_HEADER.lower(), "bucket-unavailable"))
    url = origin_url(settings.origin, parts.path or "/", parts.query)
    asked = latency.now()
    try:
        answer = await fetch_origin(url, method, headers, body, settings.origin_timeout_s)
    except OriginTimeout as exc:
        log.warning("origin timeout: %s %s: %s", method, url, exc)
        return problem_reply(504, "Origin timeout",
                             f"The origin did not answer within {settings.origin_timeout_s:g} s.", added)
    except OriginUnreachable as exc:
        log.warning("origin unreachable: %s %s: %s", method, url, exc)
        return problem_reply(502, "Origin unreachable", "The origin could not be reached.", added)
    answered = latency.now()
    label = latency.rules_label(resolution.rules)
    latency.observe(env, ctx, "origin", label, answered - asked)
    latency.observe(env, ctx, "added", label, asked - started)        # all the gateway waits for before the origin
    buffered = answer.body is not None and not answer.streamed   # HEAD/204/304 keep their Content-Length
    return Reply(answer.status, response_headers(answer.header_items, buffered) + added, answer.body)


def misconfigured(exc: SettingsError, env: Any, incoming: Incoming) -> Reply:
    """503, fail closed: nothing is forwarded and nothing is decided. A deployed Worker
    cannot refuse to start, so this is what a config that slipped past `scripts/check` and
    the build step gets. The field-path errors go to the log, and into the body only for
    the operator (a request with the admin token): they may quote override keys, which are
    API keys. Secret values are never part of an error."""
    extensions = {}
    if operator_tokens.bearer_is(incoming.headers.get("authorization"), operator_tokens.admin_token(env)):
        extensions["errors"] = exc.errors
    return problem_reply(503, "Tollgate is misconfigured",
                         "The gateway's configuration is invalid, so no request is forwarded or decided; "
                         "the errors are in the Worker's log.", **extensions)
