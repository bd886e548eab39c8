"""The identity step after `identify`: make sure the client did not mint its identity.

- A JWT (`jwt:<claim>` source) is verified: signature (worker/jwt_verify.py), then
  exp, nbf, iss, aud (src/tollgate/jwt_claims.py). The client becomes
  `jwt:<claim value>`, with the `plan` claim selecting `[vars.TOLLGATE.plans.<plan>]`.
  An invalid token is a 401 problem+json whose `reason` names what failed.
- An API key (`key:` identity), when `[vars.TOLLGATE.known_keys]` is set, must be in
  the D1 table (worker/known_keys.py). Unknown: 401, or with `unknown_keys = "per_ip"`
  the shared `unknown:<client IP>` identity, so made-up keys from one address all
  share one bucket and never get a fresh burst each.
"""
from __future__ import annotations

import hashlib
import logging
from typing import Any, Mapping

from src.tollgate import clock
from src.tollgate.identity import (MAX_IDENTITY_LENGTH, UNVERIFIED_JWT, Identity, IdentityError, Source,
                                   identify)
from src.tollgate.identity_layers import JwtSettings
from src.tollgate.jwt_claims import JwtError, Token, check_claims, claim_text, parse_token
from worker import jwks, jwt_verify, known_keys
from worker.platform import env_value
from worker.replies import Reply, problem_reply

log = logging.getLogger("tollgate.identity")
UNKNOWN = "unknown"
# sha256(token) -> (the jwt settings, its claims): a verified token's signature is checked once per
# isolate. Only tokens that verified are kept, so a client cannot fill it with made-up ones.
_verified: dict[bytes, tuple[Any, dict]] = {}
MAX_VERIFIED = 4096


async def establish(settings: Any, env: Any, headers: Mapping[str, str], identity: Identity,
                    claim: str | None = None) -> Identity | Reply:
    """The identity to count the request under, or the problem reply to send instead. `claim`: the
    JWT claim that names the client (a rule's own `key = "jwt:<claim>"`); default: the identity list's."""
    config = settings.config
    if identity.kind == UNVERIFIED_JWT:
        claim = claim or next((s.claim for s in config.identity if s.kind == "jwt"), "sub")
        return await verified_jwt(config, env, identity.value, claim)
    layer = config.layers.known_keys
    if layer is None or identity.kind != "key":
        return identity
    try:
        entry = await known_keys.lookup(env, layer, known_keys.secret_for(env, settings.identity_secret),
                                        identity.value)
    except known_keys.KeyStoreUnavailable as exc:
        log.error("%s; refusing API keys until it answers", exc)
        return problem_reply(503, "Key check unavailable", "The table of known API keys could not be read; "
                             "try again shortly.", [("Retry-After", "1")])
    if entry is not None:
        return identity._replace(plan=entry.plan)
    if layer.unknown_keys == "per_ip":
        ip = client_ip(headers, config)
        if ip is not None:
            return Identity(UNKNOWN, ip.value)
    return problem_reply(401, "Unknown API key", "This API key is not known to the gateway (or was revoked).",
                         reason="unknown_key")


def client_ip(headers: Mapping[str, str], config: Any) -> Identity | None:
    """The client's address as an `ip` identity (IPv6 per network), None when absent or malformed:
    the config's own address sources in order (`xff` behind a proxy you run), else CF-Connecting-IP."""
    sources = tuple(s for s in config.identity if s.kind in ("ip", "xff")) or (
        Source("ip", "cf-connecting-ip", config.ipv6_prefix),)
    try:
        return identify(headers, sources)
    except IdentityError:
        return None


async def verified_jwt(config: Any, env: Any, token: str, claim: str) -> Identity | Reply:
    jwt = config.layers.jwt
    try:
        digest = hashlib.sha256(token.encode()).digest()
        cached = _verified.get(digest)
        claims = cached[1] if cached is not None and cached[0] is jwt else None
        if claims is None:
            parsed = parse_token(token, jwt.claims.algorithms)
            await _check_signature(jwt, env, parsed)
            claims = parsed.claims
            if len(_verified) >= MAX_VERIFIED:
                _verified.clear()
            _verified[digest] = (jwt, claims)
        check_claims(claims, jwt.claims, clock.now_ms())
        value = claim_text(claims, claim)
        if len(value) > MAX_IDENTITY_LENGTH or not value.isprintable():
            raise JwtError("claim", f"the token's {claim} claim is not a usable identity")
        plan = claims.get(jwt.plan_claim)
    except JwtError as exc:
        return problem_reply(401, "Invalid token", f"{exc}.",
                             [("WWW-Authenticate", 'Bearer realm="tollgate", error="invalid_token"')],
                             reason=exc.reason)
    except _CannotVerify as exc:
        log.error("%s", exc)
        return problem_reply(503, "Token check unavailable", "The gateway cannot verify tokens right now.")
    return Identity("jwt", value, plan if isinstance(plan, str) and plan else None)


class _CannotVerify(Exception):
    pass


async def _check_signature(jwt: JwtSettings, env: Any, token: Token) -> None:
    """JwtError unless one configured key verifies the signature."""
    if token.alg == "HS256":
        secret = env_value(env, jwt.secret_name or "")
        if not isinstance(secret, str) or not secret:
            raise _CannotVerify(f"jwt.secret names {jwt.secret_name}, which is not set")
        candidates: list[Any] = [secret.encode()]
    else:
        kty = "RSA" if token.alg == "RS256" else "EC"
        try:
            keys = await jwks.keys_for(jwt, token.kid)
        except jwks.JwksUnavailable as exc:
            raise _CannotVerify(f"jwt.jwks_url could not be read: {exc}") from None
        candidates = [k for k in keys if k["kty"] == kty and k.get("alg", token.alg) == token.alg
                      and (token.kid is None or k.get("kid") == token.kid)]
        if not candidates:
            which = f"kid {token.kid!r}" if token.kid is not None else f"an {token.alg} key"
            raise JwtError("key", f"no configured key matches the token's {which} (a key from another issuer?)")
    for key in candidates:
        if await jwt_verify.verify_signature(token.alg, key, token.signing_input, token.signature):
            return
    raise JwtError("signature", "the token's signature does not verify")
