"""ADMIN_TOKEN and METRICS_TOKEN: the one reader of the operator's secrets and the one check
of a bearer token against them.

Why apart from worker/settings.py: these are read where Settings may not exist (a
misconfigured deployment still lets its operator read the errors) or must not be built
(the metrics scrape), so they are plain functions over the env, compared in constant time.
"""
from __future__ import annotations

import hmac
from typing import Any

from src.tollgate.envvars import env_str


def admin_token(env: Any) -> str | None:
    return env_str(env, "ADMIN_TOKEN") or None


def metrics_token(env: Any) -> str | None:
    """METRICS_TOKEN, or ADMIN_TOKEN when none is set (the admin may always scrape)."""
    return env_str(env, "METRICS_TOKEN") or admin_token(env)


def bearer_is(authorization: str | None, token: str | None) -> bool:
    """`Authorization: Bearer <token>`, compared in constant time; False without a token."""
    if not token or not authorization:
        return False
    scheme, _, given = authorization.strip().partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def is_operator(env: Any, authorization: str | None) -> bool:
    """The request carries ADMIN_TOKEN or METRICS_TOKEN."""
    return bearer_is(authorization, admin_token(env)) or bearer_is(authorization, env_str(env, "METRICS_TOKEN"))
