"""JSON Web Tokens, the pure part: decode a compact JWS and check its claims.

Why here: everything but the signature is parsing and arithmetic, the same on
every runtime, and testable with a clock passed in. The signature check needs
real cryptography (WebCrypto on the edge, a library on CPython), so it is the
adapter's (`worker/jwt_verify.py`): `parse_token` hands it `signing_input`,
`signature`, the algorithm and the key id; `check_claims` runs after it.

Refused before any key is touched (RFC 8725, JWT best current practice):
`alg: none`, an algorithm outside the configured allow-list, a header that
names a key by URL (`jku`, `x5u`, `jwk`: a client must not choose the key),
and `crit` extensions we do not implement.
"""
from __future__ import annotations

import base64
import binascii
import json
import math
from typing import Any, Mapping, NamedTuple

SUPPORTED_ALGORITHMS = ("HS256", "RS256", "ES256")
MAX_TOKEN_LENGTH = 8192            # a bearer token larger than this is not one we issued
MAX_NUMERIC_DATE_S = 253402300799  # 9999-12-31: beyond it a NumericDate is nonsense (and 1e400 is inf)
_CLIENT_CHOSEN_KEYS = ("jku", "x5u", "jwk", "x5c")


class JwtError(ValueError):
    """A token that is not acceptable; `reason` is a short machine-readable word."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        super().__init__(detail)


class Token(NamedTuple):
    alg: str
    kid: str | None
    claims: dict[str, Any]
    signing_input: bytes           # b"<header>.<payload>", what the signature covers
    signature: bytes


class ClaimRules(NamedTuple):
    algorithms: tuple[str, ...]    # the allow-list
    issuer: str | None             # required `iss`, None: not checked
    audience: str | None           # required in `aud` (a string or a list), None: not checked
    leeway_ms: int = 0             # clock skew tolerated on exp and nbf
    require_exp: bool = True


def b64url_decode(text: str, what: str) -> bytes:
    """base64url without padding (RFC 7515 section 2); JwtError names the part."""
    if not text or any(c in text for c in "=+/ \t\r\n"):
        raise JwtError("malformed", f"the token's {what} is not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise JwtError("malformed", f"the token's {what} is not base64url") from None


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):   # RecursionError: nesting thousands deep
        raise JwtError("malformed", f"the token's {what} is not JSON") from None
    if not isinstance(value, dict):
        raise JwtError("malformed", f"the token's {what} is not a JSON object")
    return value


def parse_token(token: str, algorithms: tuple[str, ...]) -> Token:
    """Split and decode a compact JWS; check the header. The signature is NOT verified here."""
    if len(token) > MAX_TOKEN_LENGTH:
        raise JwtError("malformed", f"the token is longer than {MAX_TOKEN_LENGTH} characters")
    parts = token.split(".")
    if len(parts) != 3:
        raise JwtError("malformed", "the bearer token is not a JWT (expected three dot-separated parts)")
    header = _json_object(b64url_decode(parts[0], "header"), "header")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg.lower() == "none":
        raise JwtError("alg", "the token is unsigned (alg none); a signed token is required")
    if alg not in algorithms:
        raise JwtError("alg", f"the token's algorithm {alg!r} is not accepted (accepted: {', '.join(algorithms)})")
    for name in _CLIENT_CHOSEN_KEYS:
        if name in header:
            raise JwtError("header", f"the token's header names its own key ({name}); keys come from the config")
    if "crit" in header:
        raise JwtError("header", "the token's header has critical extensions (crit), which are not supported")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise JwtError("header", "the token's kid is not a string")
    claims = _json_object(b64url_decode(parts[1], "payload"), "payload")
    signature = b64url_decode(parts[2], "signature")
    return Token(alg, kid, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), signature)


def _numeric_date_ms(claims: Mapping[str, Any], name: str) -> int | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or abs(value) > MAX_NUMERIC_DATE_S:
        raise JwtError(name, f"the token's {name} is not a NumericDate (seconds since the epoch)")
    return int(value * 1000)


def check_claims(claims: Mapping[str, Any], rules: ClaimRules, now_ms: int) -> None:
    """exp, nbf, iss, aud (RFC 7519 section 4.1); JwtError names the first that fails."""
    exp = _numeric_date_ms(claims, "exp")
    if exp is None and rules.require_exp:
        raise JwtError("exp", "the token has no expiry (exp); tokens must expire")
    if exp is not None and now_ms >= exp + rules.leeway_ms:
        raise JwtError("exp", f"the token expired {(now_ms - exp) // 1000} s ago")
    nbf = _numeric_date_ms(claims, "nbf")
    if nbf is not None and now_ms + rules.leeway_ms < nbf:
        raise JwtError("nbf", f"the token is not valid for another {(nbf - now_ms + 999) // 1000} s (nbf)")
    if rules.issuer is not None and claims.get("iss") != rules.issuer:
        raise JwtError("iss", f"the token's issuer is not {rules.issuer!r}")
    if rules.audience is not None:
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if rules.audience not in audiences:
            raise JwtError("aud", f"the token is not meant for audience {rules.audience!r}")


def claim_text(claims: Mapping[str, Any], name: str) -> str:
    """A claim used as an identity or plan: a non-empty string (or an integer, as text)."""
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        raise JwtError("claim", f"the token has no {name} claim to identify the client by")
    return str(value)
