"""JWKS fetched from `jwt.jwks_url` and cached per isolate.

Why a cache with a floor: the key set changes rarely (rotation), and a fetch is a
subrequest with its latency. Keys live `jwt.jwks_cache_seconds`; a token whose `kid`
is not in the cached set refetches at once, but at most every MIN_REFETCH_MS, so a
flood of made-up `kid`s cannot turn into a flood of fetches. When the URL cannot be
read, the last good set is used; with none, tokens get 503 (never admitted).
"""
from __future__ import annotations

import json
import logging

from src.tollgate import clock
from src.tollgate.identity_layers import JwtSettings, parse_jwks

log = logging.getLogger("tollgate.jwks")
MIN_REFETCH_MS = 30_000
FETCH_TIMEOUT_S = 5.0
_sets: dict[str, tuple[tuple[dict[str, str], ...], int]] = {}   # url -> (keys, fetched at ms)


class JwksUnavailable(Exception):
    """No key set could be had from the URL (and none was cached)."""


async def keys_for(jwt: JwtSettings, kid: str | None) -> tuple[dict[str, str], ...]:
    """The configured keys plus the URL's (fresh enough, or refetched for an unseen kid)."""
    if jwt.jwks_url is None:
        return jwt.jwks
    now = clock.now_ms()
    cached = _sets.get(jwt.jwks_url)
    age = now - cached[1] if cached is not None else None
    unseen = kid is not None and cached is not None and all(k.get("kid") != kid for k in cached[0] + jwt.jwks)
    if cached is None or age >= jwt.jwks_cache_ms or (unseen and age >= MIN_REFETCH_MS):
        try:
            _sets[jwt.jwks_url] = (await _fetch(jwt.jwks_url), now)
        except Exception as exc:  # unreachable, not JSON, no usable key: keep the last good set
            log.warning("JWKS %s could not be read (%s: %s)%s", jwt.jwks_url, type(exc).__name__, exc,
                        "; using the cached set" if cached else "")
            if cached is None:
                raise JwksUnavailable(str(exc)) from None
            _sets[jwt.jwks_url] = (cached[0], now)      # retry after a full period, not on every request
    return jwt.jwks + _sets[jwt.jwks_url][0]


async def _fetch(url: str) -> tuple[dict[str, str], ...]:
    import asyncio

    import workers   # the platform's fetch (workers-runtime-sdk on the edge, the local shim on CPython)
    async with asyncio.timeout(FETCH_TIMEOUT_S):
        reply = await workers.fetch(url, method="GET", headers=[("accept", "application/json")])
        if int(reply.status) != 200:
            raise ValueError(f"HTTP {reply.status}")
        text = await reply.text()
    errors: list[str] = []
    keys = parse_jwks(json.loads(text), "jwks_url", errors)
    for error in errors:
        log.warning("JWKS %s: %s (key skipped)", url, error)
    if not keys:
        raise ValueError("no usable public key in the set")
    return keys


def forget() -> None:
    _sets.clear()
