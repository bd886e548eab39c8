"""The config of the identity layers a client cannot mint (issue 11): known keys,
signed identities (JWT) and per-rule identity. Parsed with the rest of
`[vars.TOLLGATE]` by `config.parse_config`, which calls `parse_layers`.

```toml
[vars.TOLLGATE.known_keys]          # API keys must be in the D1 table (scripts/keys)
binding = "USAGE_DB"                # the D1 database holding table known_keys
unknown_keys = "per_ip"             # "reject": 401 | "per_ip": one shared `unknown` client per IP
cache_seconds = 30                  # staleness bound: a revoked key works at most this long

[vars.TOLLGATE.jwt]                 # the "jwt:<claim>" identity source
algorithms = ["HS256", "RS256", "ES256"]
issuer = "https://auth.example.com"
audience = "tollgate"
secret = "JWT_SECRET"               # the secret (env name) holding the HS256 key
jwks = { keys = [ ... ] }           # RS256 / ES256 public keys (JWK, RFC 7517)
leeway_seconds = 30
plan_claim = "plan"                 # selects [vars.TOLLGATE.plans.<value>]

[vars.TOLLGATE.plans.pro]           # the same settings as an override, per plan
burst = "100/second"
```
"""
from __future__ import annotations

import hashlib
import hmac
from typing import Any, Mapping, NamedTuple

from src.tollgate.config_fields import unknown_keys as _unknown
from src.tollgate.identity import Source, parse_source
from src.tollgate.jwt_claims import SUPPORTED_ALGORITHMS, ClaimRules

UNKNOWN_KEY_MODES = ("reject", "per_ip")
DEFAULT_CACHE_SECONDS = 30
MAX_CACHE_SECONDS = 3600
_KNOWN_KEYS_KEYS = ("binding", "unknown_keys", "cache_seconds")
_JWT_KEYS = ("algorithms", "issuer", "audience", "secret", "jwks", "jwks_url", "jwks_cache_seconds", "leeway_seconds",
             "plan_claim", "require_exp")
DEFAULT_JWKS_CACHE_SECONDS = 300
_JWK_BY_ALG = {"RS256": ("RSA", ("n", "e")), "ES256": ("EC", ("x", "y"))}
_ENV_NAME = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")


class KnownKeys(NamedTuple):
    binding: str = "USAGE_DB"
    unknown_keys: str = "reject"
    cache_ms: int = DEFAULT_CACHE_SECONDS * 1000


class JwtSettings(NamedTuple):
    claims: ClaimRules
    secret_name: str | None                 # env name of the HS256 key
    jwks: tuple[dict[str, str], ...]        # public JWKs (kty, kid, n/e or crv/x/y)
    plan_claim: str = "plan"
    jwks_url: str | None = None             # fetched and cached per isolate (worker/jwks.py)
    jwks_cache_ms: int = DEFAULT_JWKS_CACHE_SECONDS * 1000


class Layers(NamedTuple):
    known_keys: KnownKeys | None = None
    jwt: JwtSettings | None = None


NO_LAYERS = Layers()


def known_key_hash(secret: bytes, key: str) -> str:
    """The only form in which a known key is stored (D1 `known_keys.key_hash`): a keyed hash,
    domain-separated from `identity.client_key`, so the table never names a bucket."""
    return hmac.new(secret, b"tollgate-known-key\x00" + key.encode(), hashlib.sha256).hexdigest()


def parse_layers(raw: Mapping[str, Any], path: str, errors: list[str]) -> Layers:
    known = raw.get("known_keys")
    jwt = raw.get("jwt")
    return Layers(_known_keys(known, f"{path}.known_keys", errors) if known is not None else None,
                  _jwt(jwt, f"{path}.jwt", errors) if jwt is not None else None)


def rule_keys(raw_rules: Any, trust: bool, ipv6_prefix: int, path: str,
              errors: list[str]) -> dict[str, Source]:
    """`key = "ip"` on a rule: the identity that rule counts per, when not the request's own.

    Why per rule: "10000/day per API key and 600/minute per IP" in one config; a rule
    with its own key is decided in that identity's bucket (worker/rule_buckets.py)."""
    out: dict[str, Source] = {}
    for i, item in enumerate(raw_rules if isinstance(raw_rules, (list, tuple)) else ()):
        if not isinstance(item, Mapping) or "key" not in item:
            continue
        try:
            out[str(item.get("name"))] = parse_source(item["key"], trust, ipv6_prefix)
        except ValueError as exc:
            errors.append(f"{path}[{i}].key: {exc}")
    return out


def check_sources(sources: tuple[Source, ...], keys: Mapping[str, Source], layers: Layers, path: str,
                  errors: list[str]) -> None:
    """A jwt:<claim> source without a [vars.TOLLGATE.jwt] table could verify nothing."""
    if layers.jwt is not None:
        return
    for where, src in [(f"{path}.identity", s) for s in sources] + [(f"{path}.rules.{n}.key", s)
                                                                     for n, s in keys.items()]:
        if src.kind == "jwt":
            errors.append(f"{where}: {src} needs a [vars.TOLLGATE.jwt] table (algorithms, keys, issuer, audience)")
            return


def _known_keys(value: Any, where: str, errors: list[str]) -> KnownKeys | None:
    if not isinstance(value, Mapping):
        errors.append(f'{where}: expected a table such as {{ unknown_keys = "per_ip" }}')
        return None
    _unknown(value, _KNOWN_KEYS_KEYS, where, errors)
    binding = value.get("binding", "USAGE_DB")
    if not isinstance(binding, str) or not binding or not set(binding) <= _ENV_NAME:
        errors.append(f"{where}.binding: expected the name of a D1 binding, got {binding!r}")
    mode = value.get("unknown_keys", "reject")
    if mode not in UNKNOWN_KEY_MODES:
        errors.append(f"{where}.unknown_keys: expected reject | per_ip, got {mode!r}")
    cache = value.get("cache_seconds", DEFAULT_CACHE_SECONDS)
    if isinstance(cache, bool) or not isinstance(cache, (int, float)) or not 0 < cache <= MAX_CACHE_SECONDS:
        errors.append(f"{where}.cache_seconds: expected seconds in (0, {MAX_CACHE_SECONDS}] (how long a revoked "
                      f"key may still work), got {cache!r}")
        cache = DEFAULT_CACHE_SECONDS
    return KnownKeys(str(binding), str(mode), int(cache * 1000))


def _jwt(value: Any, where: str, errors: list[str]) -> JwtSettings | None:
    if not isinstance(value, Mapping):
        errors.append(f'{where}: expected a table such as {{ algorithms = ["RS256"], issuer = "...", audience = "..." }}')
        return None
    before = len(errors)
    _unknown(value, _JWT_KEYS, where, errors)
    algorithms = value.get("algorithms", ["RS256", "ES256"])
    if (not isinstance(algorithms, (list, tuple)) or not algorithms
            or any(a not in SUPPORTED_ALGORITHMS for a in algorithms)):
        errors.append(f"{where}.algorithms: expected a non-empty list of {', '.join(SUPPORTED_ALGORITHMS)}, "
                      f"got {algorithms!r}")
        algorithms = []
    issuer, audience = _optional_text(value, "issuer", where, errors), _optional_text(value, "audience", where, errors)
    secret = _optional_text(value, "secret", where, errors)
    if secret is not None and not set(secret) <= _ENV_NAME:
        errors.append(f"{where}.secret: expected the NAME of a secret (wrangler secret put NAME), got {secret!r}")
    if "HS256" in algorithms and secret is None:
        errors.append(f'{where}.secret: HS256 needs the name of the secret holding its key, such as "JWT_SECRET"')
    jwks = _jwks(value.get("jwks"), f"{where}.jwks", errors)
    jwks_url = _optional_text(value, "jwks_url", where, errors)
    if jwks_url is not None and not jwks_url.startswith(("https://", "http://")):
        errors.append(f"{where}.jwks_url: expected an https:// URL, got {jwks_url!r}")
    if any(a in _JWK_BY_ALG for a in algorithms) and not jwks and jwks_url is None:
        errors.append(f"{where}.jwks: RS256/ES256 need public keys: jwks = {{ keys = [...] }} or jwks_url")
    cache = value.get("jwks_cache_seconds", DEFAULT_JWKS_CACHE_SECONDS)
    if isinstance(cache, bool) or not isinstance(cache, int) or not 1 <= cache <= 86400:
        errors.append(f"{where}.jwks_cache_seconds: expected whole seconds 1..86400, got {cache!r}")
        cache = DEFAULT_JWKS_CACHE_SECONDS
    leeway = value.get("leeway_seconds", 0)
    if isinstance(leeway, bool) or not isinstance(leeway, int) or not 0 <= leeway <= 300:
        errors.append(f"{where}.leeway_seconds: expected whole seconds 0..300, got {leeway!r}")
        leeway = 0
    plan_claim = _optional_text(value, "plan_claim", where, errors) or "plan"
    require_exp = value.get("require_exp", True)
    if not isinstance(require_exp, bool):
        errors.append(f"{where}.require_exp: expected true or false, got {require_exp!r}")
        require_exp = True
    if len(errors) > before:
        return None
    rules = ClaimRules(tuple(algorithms), issuer, audience, leeway * 1000, require_exp)
    return JwtSettings(rules, secret, jwks, plan_claim, jwks_url, cache * 1000)


def parse_jwks(value: Any, where: str, errors: list[str]) -> tuple[dict[str, str], ...]:
    """A JWK Set's usable public keys (RSA; EC P-256); `errors` names each one refused."""
    return _jwks(value, where, errors)


def _jwks(value: Any, where: str, errors: list[str]) -> tuple[dict[str, str], ...]:
    if value is None:
        return ()
    keys = value.get("keys") if isinstance(value, Mapping) else None
    if not isinstance(keys, (list, tuple)):
        errors.append(f"{where}: expected a JWK Set, {{ keys = [ {{ kty, kid, ... }} ] }}")
        return ()
    out = []
    for i, jwk in enumerate(keys):
        spot = f"{where}.keys[{i}]"
        kinds = {kty: fields for kty, fields in _JWK_BY_ALG.values()}
        kty = jwk.get("kty") if isinstance(jwk, Mapping) else None
        if kty not in kinds:
            errors.append(f"{spot}: expected a public RSA or EC key (kty RSA | EC), got {kty!r}")
            continue
        missing = [f for f in kinds[kty] if not isinstance(jwk.get(f), str) or not jwk.get(f)]
        if kty == "EC" and jwk.get("crv") != "P-256":
            missing.append("crv = P-256")
        if "d" in jwk:
            errors.append(f"{spot}: holds a private key (d); give the public key only")
        elif missing:
            errors.append(f"{spot}: missing {', '.join(missing)}")
        else:
            out.append({k: str(v) for k, v in jwk.items() if k in ("kty", "kid", "alg", "crv", "n", "e", "x", "y")})
    return tuple(out)


def _optional_text(table: Mapping, key: str, where: str, errors: list[str]) -> str | None:
    value = table.get(key)
    if value is not None and (not isinstance(value, str) or not value):
        errors.append(f"{where}.{key}: expected a non-empty string, got {value!r}")
        return None
    return value
