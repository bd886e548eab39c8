"""`/__tollgate/admin/clients/<identity>`: look at (GET) or reset (DELETE) one
client's bucket; `.../restore` (POST) refills an empty one from the store.

Only with `Authorization: Bearer <ADMIN_TOKEN>`, compared in constant time.
No ADMIN_TOKEN configured: the admin API is off (403 saying so).
`<identity>` is URL-decoded and read like an override key (core
`Identity.parse`): `key:<value>`, `ip:<address>`, or a bare value (a key).
"""
from __future__ import annotations

import hmac
import json
import logging
from typing import Any
from urllib.parse import unquote

from src.tollgate.identity import Identity, IdentityError, client_key
from src.tollgate.wire import encode_decide
from worker.platform import Incoming
from worker.replies import Reply, json_reply, method_not_allowed, not_found, problem_reply
from worker.restore_route import restore_client
from worker.settings import Settings

log = logging.getLogger("tollgate.admin")

PREFIX = "/__tollgate/admin/clients/"


def admin_refusal(admin_token: bytes | None, authorization: str | None) -> Reply | None:
    """None when the caller holds ADMIN_TOKEN, else the 403/401 problem to send."""
    if admin_token is None:
        return problem_reply(403, "Admin API disabled", "Set the ADMIN_TOKEN secret to enable /__tollgate/admin.")
    if not authorization:
        return problem_reply(401, "Unauthorized", "Send Authorization: Bearer <ADMIN_TOKEN>.",
                             [("WWW-Authenticate", 'Bearer realm="tollgate-admin"')])
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), admin_token):
        return problem_reply(403, "Forbidden", "The admin token is not valid.")
    return None


async def handle_admin(incoming: Incoming, path: str, settings: Settings, env: Any, ctx: Any) -> Reply:
    refusal = admin_refusal(settings.admin_token, incoming.headers.get("authorization"))
    if refusal is not None:
        return refusal
    segment, _, action = path[len(PREFIX):].partition("/")
    if not segment or action not in ("", "restore"):
        return not_found(path)
    try:
        identity = Identity.parse(unquote(segment, errors="strict"), settings.config.ipv6_prefix)
    except (IdentityError, UnicodeDecodeError) as exc:
        return problem_reply(400, "Bad client identity",
                             f"{exc}; expected key:<value>, ip:<address> or a bare key (URL-encoded).")
    key = client_key(settings.identity_secret, identity)
    method = incoming.method
    if action == "restore":
        if method != "POST":
            return method_not_allowed(method, ("POST",))
        status, headers, body = await restore_client(env, key, await incoming.body())
        return Reply(status, headers, body)
    if method == "GET":
        return await _inspect(env, settings, identity, key)
    if method == "DELETE":
        return await _reset(env, identity, key)
    return method_not_allowed(method, ("GET", "DELETE"))


async def _inspect(env: Any, settings: Settings, identity: Identity, key: str) -> Reply:
    config = settings.config
    rules, blocked = config.overrides.get(str(identity), (config.rules, None))
    try:
        state = json.loads(await env.BUCKETS.getByName(key).inspect(encode_decide(rules, 0)))
    except Exception as exc:
        log.error("admin inspect of %s failed: %s: %s", key, type(exc).__name__, exc)
        return problem_reply(503, "Bucket unavailable", "The client's bucket could not be read; try again.")
    # Every rule that applies to the client, also those it never hit (state null, full quota).
    return json_reply(200, {"identity": str(identity), "client": key, "blocked_by": blocked,
                            "rules": state.get("rules", {}), "closed": state.get("closed", []),
                            "unsent": state.get("unsent", 0), "now_ms": state.get("now_ms"),
                            "cleanup_at_ms": state.get("cleanup_at_ms")})   # idle bucket's deletion (lifecycle.py)


async def _reset(env: Any, identity: Identity, key: str) -> Reply:
    try:
        result = json.loads(await env.BUCKETS.getByName(key).reset())
    except Exception as exc:
        log.error("admin reset of %s failed: %s: %s", key, type(exc).__name__, exc)
        return problem_reply(503, "Bucket unavailable", "The client's bucket could not be reset; try again.")
    return json_reply(200, {"identity": str(identity), "client": key, "reset": True,
                            "reset_rules": result.get("reset_rules", 0)})
