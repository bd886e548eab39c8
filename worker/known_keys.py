"""Known API keys: is this key in the D1 `known_keys` table (scripts/keys)?

Why a per-isolate cache: a D1 read on every request would cost a subrequest and
its latency; a cached answer costs a dict lookup. The staleness bound is
`known_keys.cache_seconds`: an answer (found or not) is reused for at most that
long, so a revoked key keeps working in an isolate for at most that long after
`scripts/keys revoke`, and a key just added may be refused for that long where it
was asked about before. Unknown keys are cached too, so a flood of one made-up key
costs one read per isolate per period; a flood of fresh random keys costs one read
each (the read comes before the bucket: the per-IP `unknown` limit bounds what they
are admitted, not what they cost; README "Identities a client cannot mint" measures it).
"""
from __future__ import annotations

from typing import Any

from src.tollgate import clock
from src.tollgate.identity_layers import KnownKeys, known_key_hash
from src.tollgate.known_keys_table import LOOKUP, KnownKey, lookup_result
from worker.isolate import PerIsolate

MAX_CACHED = 20_000          # entries per isolate; the cache starts over beyond it
_caches = PerIsolate(dict)   # per isolate: key hash -> (entry or None, valid until ms)


class KeyStoreUnavailable(Exception):
    """The D1 table could not be read: the caller fails closed (503), never admits unchecked."""


def secret_for(env: Any, identity_secret: bytes) -> bytes:
    """KEYS_SECRET when set (so rotating IDENTITY_SECRET leaves the table valid), else IDENTITY_SECRET."""
    value = getattr(env, "KEYS_SECRET", None)
    return value.encode() if isinstance(value, str) and value else identity_secret


async def lookup(env: Any, layer: KnownKeys, secret: bytes, key: str) -> KnownKey | None:
    """The key's entry, or None when it is unknown or revoked (cached up to `layer.cache_ms`)."""
    key_hash = known_key_hash(secret, key)
    now = clock.now_ms()
    cache: dict[str, tuple[KnownKey | None, int]] = _caches.get(env)
    cached = cache.get(key_hash)
    if cached is not None and now < cached[1]:
        return cached[0]
    db = getattr(env, layer.binding, None)
    if db is None:
        raise KeyStoreUnavailable(f"no D1 binding named {layer.binding} (known_keys.binding)")
    try:
        result = await db.prepare(LOOKUP).bind(key_hash).all()
    except Exception as exc:  # D1 down, table missing: say so, never admit unchecked
        raise KeyStoreUnavailable(f"known_keys lookup failed: {exc}") from exc
    entry = lookup_result(result)
    if len(cache) >= MAX_CACHED:
        cache.clear()
    cache[key_hash] = (entry, now + layer.cache_ms)     # from before the read: the bound holds
    return entry


def forget() -> None:
    """Drop every isolate's cached answers (tests; a new config)."""
    _caches.clear()
