"""`/__tollgate/allow`: the decision alone, for another gateway in front of the API.

Which request is being decided (rules match the *original* method and path):
- nginx `auth_request` / Traefik `forwardAuth` / Caddy `forward_auth`: the
  `X-Original-URI` + `X-Original-Method` (or `X-Forwarded-Uri` +
  `X-Forwarded-Method`) headers the proxy sets;
- Envoy `ext_authz` (HTTP service, `path_prefix: /__tollgate/allow`): the
  original path follows the prefix and the check keeps the original method;
- pure decision service (no ORIGIN_URL): every path outside `/__tollgate/`
  is decided as it is;
- otherwise the bare `/__tollgate/allow` decides `/` with the request's method.

A caller may set the cost (`Tollgate-Cost: N`, or `?cost=N` on the bare
path only: elsewhere the query belongs to the original request) only with
`Tollgate-Allow-Token: <ALLOW_TOKEN>`; not `Authorization`, which may be the
client's own bearer identity. `Tollgate-Deny-Status: 403` (or 401) replaces
the 429 on denial, for nginx `auth_request`, which treats any status other
than 2xx, 401 and 403 as an error.

With a deny status requested, every problem reply also carries its document in
`Tollgate-Problem` (compact JSON, a denial with `"status": 429`, what the end
client is to get): nginx `auth_request` keeps a check's headers but drops its
body, and maps the header back onto the client's 429
(integrations/nginx/tollgate.conf).

200 carries the RateLimit headers and `{"allowed": true, "rule": null, "retry_after": 0}`; a denial
is the gateway's own 429 problem+json (quota-exceeded), with `allowed`, `rule` and
`retry_after` as extension members, under the deny status.

A request that took a concurrency slot also gets its release token (`Tollgate-Release`
header and a `release` member): a caller that can act when its request ends sends it to
`POST /__tollgate/release`; otherwise the slot lives for the rule's `hold_seconds`
(worker/slots.py, README "Concurrency limits").
"""
from __future__ import annotations

import hmac
import json
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from worker.admission import Denial, admit
from worker.limiter import rule_path
from worker.platform import Incoming
from worker.replies import Reply, json_reply, problem_reply
from worker.slots import TOKEN_HEADER
from worker.settings import Settings

PREFIX = "/__tollgate/allow"
_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")
DENY_STATUSES = {"401": 401, "403": 403, "429": 429}
ADMITTED = {"allowed": True, "rule": None, "retry_after": 0}
ADMITTED_BODY = json.dumps(ADMITTED, separators=(",", ":"))    # the same text on every admitted request
PROBLEM_HEADER = "Tollgate-Problem"


def original_request(incoming: Incoming, path: str, at_root: bool) -> tuple[str, str] | Reply:
    """(method, path) of the request being decided, or a 400 problem."""
    headers = incoming.headers
    uri = headers.get("x-original-uri") or headers.get("x-forwarded-uri")
    method = headers.get("x-original-method") or headers.get("x-forwarded-method")
    if uri is not None:
        uri = uri.strip()
        if uri.startswith(("http://", "https://")):
            uri = urlsplit(uri).path or "/"
        original_path = uri.split("?", 1)[0]
        if not original_path.startswith("/"):
            return problem_reply(400, "Bad original URI", "X-Original-URI must be a path starting with /.")
    elif at_root:
        original_path = path
    elif len(path) > len(PREFIX):
        original_path = path[len(PREFIX):]
    else:
        original_path = "/"
    if method is not None:
        method = method.strip().upper()
        if not method or not set(method) <= _TOKEN_CHARS:
            return problem_reply(400, "Bad original method", "X-Original-Method must be an HTTP method token.")
    else:
        method = incoming.method
    return method, rule_path(original_path)


def requested_cost(incoming: Incoming, settings: Settings, query: str, bare: bool) -> int | None | Reply:
    """The caller's cost, None when it sets none, or a 403/400 problem."""
    raw = incoming.headers.get("tollgate-cost")
    if raw is None and bare and "cost=" in query:
        raw = dict(parse_qsl(query, keep_blank_values=True)).get("cost")
    if raw is None:
        return None
    token = settings.allow_token
    if token is None:
        return problem_reply(403, "Cost not accepted",
                             "Setting a cost needs Tollgate-Allow-Token, and no ALLOW_TOKEN is configured.")
    given = incoming.headers.get("tollgate-allow-token")
    if given is None or not hmac.compare_digest(given.strip().encode(), token):
        return problem_reply(403, "Cost not accepted",
                             "Setting a cost needs a valid Tollgate-Allow-Token: <ALLOW_TOKEN> header.")
    text = raw.strip()
    limit = settings.config.max_cost
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= limit:
        return problem_reply(400, "Bad cost", f"cost must be a whole number from 1 to {limit}, got {raw[:40]!r}.")
    return int(text)


async def handle_allow(incoming: Incoming, path: str, query: str, settings: Settings, env: Any, ctx: Any,
                       at_root: bool = False) -> Reply:
    reply = await _decide(incoming, path, query, settings, env, ctx, at_root)
    deny = incoming.headers.get("tollgate-deny-status")
    if deny is None or reply.status < 400:
        return reply
    return with_problem_header(reply, DENY_STATUSES.get(deny.strip(), 429))


def with_problem_header(reply: Reply, deny_status: int) -> Reply:
    """`reply` plus its problem document in Tollgate-Problem; a denial under the deny status
    (it has Retry-After) says the 429 it stands for."""
    try:
        doc = json.loads(reply.body)
    except (TypeError, ValueError):
        return reply
    if reply.status == deny_status and any(k.lower() == "retry-after" for k, _ in reply.headers):
        doc["status"] = 429
    return Reply(reply.status, reply.headers + [(PROBLEM_HEADER, json.dumps(doc, separators=(",", ":")))],
                 reply.body)


async def _decide(incoming: Incoming, path: str, query: str, settings: Settings, env: Any, ctx: Any,
                  at_root: bool) -> Reply:
    original = original_request(incoming, path, at_root)
    if isinstance(original, Reply):
        return original
    method, original_path = original
    cost = requested_cost(incoming, settings, query, bare=not at_root and path == PREFIX)
    if isinstance(cost, Reply):
        return cost
    status = DENY_STATUSES.get((incoming.headers.get("tollgate-deny-status") or "429").strip(), 429)
    admitted = await admit(env, ctx, settings, incoming, method, original_path, cost,
                           Denial(status, allowed_member=True))
    if isinstance(admitted, Reply):
        return admitted
    held = admitted.held
    if held is not None:    # a concurrency slot: it lives for the rule's hold, or until POST /__tollgate/release
        extra = {"unchecked": True} if admitted.unchecked else {}
        return json_reply(200, {**ADMITTED, **extra, "release": held.token},
                          admitted.headers + [(TOKEN_HEADER, held.token)])
    if admitted.unchecked:
        return json_reply(200, {**ADMITTED, "unchecked": True}, admitted.headers)
    return json_reply(200, ADMITTED_BODY, admitted.headers)
