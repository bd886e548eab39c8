"""The dashboard's login session: a cookie that proves its holder typed ADMIN_TOKEN.

Why signed, not stored: the Worker keeps no session table (every isolate would
need it), so the cookie carries its own expiry and an HMAC over it. The value
is `v1.<expiry, unix seconds>.<hex HMAC-SHA256(key, "v1.<expiry>")>`: it holds
no secret and no token, only proof that the Worker issued it before the expiry.

The signing key is derived, not configured: HMAC-SHA256(IDENTITY_SECRET,
"tollgate dashboard session\\0" + ADMIN_TOKEN). Changing either secret
(rotating the admin token, say) ends every session at once, and nobody holding
only ADMIN_TOKEN can forge a session offline without also knowing
IDENTITY_SECRET. The label keeps this key apart from every other use of
IDENTITY_SECRET (client hashes, known-key hashes).

Pure: the clock is passed in (`now_ms`), like the rest of the core.
"""
from __future__ import annotations

import hashlib
import hmac

COOKIE_NAME = "tollgate_dashboard"
SESSION_TTL_S = 3600                 # short-lived: log in again after an hour
_VERSION = "v1"
_LABEL = b"tollgate dashboard session\x00"


def session_key(identity_secret: bytes, admin_token: bytes) -> bytes:
    """The cookie signing key (see the module docstring for why both secrets)."""
    return hmac.new(identity_secret, _LABEL + admin_token, hashlib.sha256).digest()


def _mac(key: bytes, expiry_s: int) -> str:
    return hmac.new(key, f"{_VERSION}.{expiry_s}".encode(), hashlib.sha256).hexdigest()


def issue(key: bytes, now_ms: int, ttl_s: int = SESSION_TTL_S) -> str:
    """A cookie value valid for `ttl_s` seconds from `now_ms`."""
    expiry_s = now_ms // 1000 + ttl_s
    return f"{_VERSION}.{expiry_s}.{_mac(key, expiry_s)}"


def valid(key: bytes, value: str | None, now_ms: int, ttl_s: int = SESSION_TTL_S) -> bool:
    """True for a value `issue` made with this key that has not expired. An expiry further
    ahead than one TTL is refused too: no cookie outlives the TTL it was issued with."""
    if not value or len(value) > 100:
        return False
    version, _, rest = value.partition(".")
    expiry_text, _, mac = rest.partition(".")
    if version != _VERSION or not expiry_text.isdigit() or len(expiry_text) > 12:
        return False
    expiry_s = int(expiry_text)
    if not hmac.compare_digest(mac.encode(), _mac(key, expiry_s).encode()):
        return False
    now_s = now_ms // 1000
    return now_s < expiry_s <= now_s + ttl_s


def cookie_value(cookie_header: str | None, name: str = COOKIE_NAME) -> str | None:
    """The value of cookie `name` in a `Cookie` request header (RFC 6265 `name=value; ...`)."""
    for part in (cookie_header or "").split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            return value.strip().strip('"')
    return None
