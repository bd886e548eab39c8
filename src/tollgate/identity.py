"""Who is calling: an ordered list of sources, the first one present wins.

Raw API keys never leave the Worker: the Durable Object name and every stored
snapshot use `client_key`, an HMAC-SHA256 of the identity under a secret.

IPv6 clients are grouped by network prefix (/64 unless configured): one host
picks any of 2^64 addresses in its /64 at will (SLAAC, privacy addresses,
RFC 8981), so a limit per address would be no limit at all.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
from typing import Mapping, NamedTuple

MAX_IDENTITY_LENGTH = 256
DEFAULT_IPV6_PREFIX = 64
SOURCE_HELP = 'expected "header:<name>", "bearer", "jwt:<claim>", "ip" or "xff"'
# The kind `identify` gives a JWT bearer token before its signature is checked: the Worker's
# identity step (worker/identity_step.py) verifies it and replaces it with `jwt:<claim value>`.
UNVERIFIED_JWT = "unverified-jwt"


class IdentityError(ValueError):
    """A credential that is present but malformed: the client gets a 400 naming it."""


class Identity(NamedTuple):
    kind: str   # "key" (API key or bearer token), "ip", "jwt" (a verified claim), "unknown" (per IP)
    value: str
    plan: str | None = None   # from a verified source (JWT claim, known-keys table): selects `plans.<name>`

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"

    @classmethod
    def parse(cls, text: str, ipv6_prefix: int = DEFAULT_IPV6_PREFIX) -> "Identity":
        """`key:<value>`, `ip:<address>`, `jwt:<subject>`, `unknown:<address>`, or a bare value, which is
        a key (admin API, overrides).

        An IPv6 address names its group (`ip:2001:db8:1:2::/64`); the group itself may be
        written too, with the configured prefix length.
        """
        if text.startswith("ip:"):
            return cls("ip", _parse_ip_identity(text[3:], ipv6_prefix))
        if text.startswith("jwt:"):          # a verified token's subject (issue 11)
            return cls("jwt", _check_key(text[4:], "jwt subject"))
        if text.startswith("unknown:"):      # the shared client of unknown keys from one address
            return cls("unknown", _parse_ip_identity(text[8:], ipv6_prefix))
        if text.startswith("key:"):
            text = text[4:]
        return cls("key", _check_key(text, "key"))


class Source(NamedTuple):
    kind: str           # "header", "bearer", "jwt", "ip", "xff"
    header: str         # the request header it reads (lower case)
    ipv6_prefix: int = DEFAULT_IPV6_PREFIX      # ip, xff: IPv6 clients grouped by this network
    claim: str = ""     # jwt: the verified claim that names the client ("sub")

    def __str__(self) -> str:
        return {"header": f"header:{self.header}", "jwt": f"jwt:{self.claim}"}.get(self.kind, self.kind)


def parse_source(text: str, trust_forwarded: bool = False, ipv6_prefix: int = DEFAULT_IPV6_PREFIX) -> Source:
    """One identity source; ValueError names what is accepted."""
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not an identity source ({SOURCE_HELP})")
    spec = text.strip().lower()
    if spec.startswith("header:"):
        name = spec[7:].strip()
        if not name or any(c in name for c in " \t:()<>@,;\\\"/[]?={}"):
            raise ValueError(f'"{text}" does not name a valid header ({SOURCE_HELP})')
        return Source("header", name)
    if spec == "bearer":
        return Source("bearer", "authorization")
    if spec.startswith("jwt:"):
        claim = text.strip()[4:].strip()          # claim names are case-sensitive
        if not claim or not claim.isascii() or not claim.isprintable() or " " in claim:
            raise ValueError(f'"{text}" does not name a claim ({SOURCE_HELP})')
        return Source("jwt", "authorization", claim=claim)
    if spec == "ip":
        return Source("ip", "cf-connecting-ip", ipv6_prefix)
    if spec == "xff":
        if not trust_forwarded:
            raise ValueError('"xff" trusts X-Forwarded-For, which any client can forge: '
                             "set trust_forwarded_for = true if a proxy you run sets it")
        return Source("xff", "x-forwarded-for", ipv6_prefix)
    raise ValueError(f'"{text}" is not an identity source ({SOURCE_HELP})')


def parse_sources(specs: list[str], trust_forwarded: bool = False,
                  ipv6_prefix: int = DEFAULT_IPV6_PREFIX) -> tuple[Source, ...]:
    """The configured identity list, in order; ValueError names the first bad entry."""
    return tuple(parse_source(s, trust_forwarded, ipv6_prefix) for s in specs)


def identify(headers: Mapping[str, str], sources: tuple[Source, ...]) -> Identity | None:
    """The first source present in `headers`; None if none is.

    `headers` is a case-insensitive mapping (the SDK's) or a dict with
    lower-case names. A missing or empty value is "not present" and the next
    source is tried; a present but malformed one raises IdentityError (400).
    """
    for src in sources:
        raw = headers.get(src.header)
        if raw is None:
            continue
        raw = raw.strip()
        if not raw:
            continue
        kind = src.kind
        if kind == "header":
            return Identity("key", _check_key(raw, f"header {src.header}"))
        if kind == "bearer":
            scheme, _, token = raw.partition(" ")
            if scheme.lower() != "bearer":
                continue                     # Basic or another scheme: not ours to read
            token = token.strip()
            if not token:
                continue                     # an empty credential is an absent one: next source
            return Identity("key", _check_key(token, "header authorization: bearer token"))
        if kind == "jwt":
            scheme, _, token = raw.partition(" ")
            token = token.strip()
            if scheme.lower() != "bearer" or token.count(".") != 2:
                continue                     # not a JWT: an opaque token is the "bearer" source's
            return Identity(UNVERIFIED_JWT, token)   # verified by the Worker before any use
        if kind == "xff":
            raw = raw.split(",", 1)[0].strip()
        return Identity("ip", _ip_identity(_check_ip(raw, src.header), src.ipv6_prefix))
    return None


# (secret, kind, value) -> client_key: the same few clients ask again and again, and the HMAC
# cost about 5 us per request on Pyodide (scripts/bench workerd, 2026-12-01). Bounded, so a flood
# of made-up keys only ever costs the hash it would have cost anyway plus one insert.
_keys: dict[tuple[bytes, str, str], str] = {}
MAX_CACHED_KEYS = 4096


def client_key(secret: bytes, identity: Identity) -> str:
    """The keyed hash that names the client's Durable Object and its snapshots."""
    cache_key = (secret, identity[0], identity[1])
    key = _keys.get(cache_key)
    if key is None:
        if len(_keys) >= MAX_CACHED_KEYS:
            _keys.clear()
        key = _keys[cache_key] = hmac.new(secret, str(identity).encode(), hashlib.sha256).hexdigest()
    return key


def _check_key(value: str, where: str) -> str:
    """A key is visible ASCII (RFC 9110 tchar and friends: what API keys and RFC 6750 tokens
    are made of). Why so strict: the key is hashed as text; a byte that is not UTF-8
    reaches the Worker as U+FFFD on workerd (see `describe_char`), so two different keys
    could hash alike, and a comma means the header was sent more than once."""
    if len(value) > MAX_IDENTITY_LENGTH:
        raise IdentityError(f"{where} is {len(value)} characters long; at most {MAX_IDENTITY_LENGTH} are accepted")
    if not value:
        raise IdentityError(f"{where} is empty")
    if value.isascii() and value.isprintable() and " " not in value and "," not in value:
        return value                        # the common case: one pass each, no loop in Python
    if "," in value:
        raise IdentityError(f"{where} is repeated or lists several values (a comma): send it exactly once")
    for ch in value:
        if ch <= " " or ch == "\x7f":
            raise IdentityError(f"{where} contains a control or space character")
        if ch > "~":
            raise IdentityError(f"{where} contains {describe_char(ch)}; an identity is visible ASCII only")
    return value


def describe_char(ch: str) -> str:
    """How a refused character reads in a 400: U+FFFD is what workerd makes of bytes that are not
    UTF-8 (header values become JS strings decoded as UTF-8: cloudflare/workerd
    src/workerd/jsg/util.h `v8Str`, src/workerd/api/headers.c++ "we encode header strings as UTF-8")."""
    if ch == "\ufffd":
        return "bytes that are not UTF-8 (U+FFFD)"
    return f"a non-ASCII character (U+{ord(ch):04X})"


def _check_ip(value: str, where: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The address, IPv4-mapped IPv6 unwrapped, so one client is one identity."""
    if len(value) > 64:
        raise IdentityError(f"{where} is not an IP address")
    try:
        ip = ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        raise IdentityError(f"{where} is not an IP address") from None
    if ip.version == 6:
        if ip.scope_id:                      # fe80::1%eth0: a zone is not part of who the client is
            raise IdentityError(f"{where} is not a global IP address (it has a zone)")
        if ip.ipv4_mapped is not None:       # ::ffff:192.0.2.1 is 192.0.2.1
            return ip.ipv4_mapped
    return ip


def _ip_identity(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, ipv6_prefix: int) -> str:
    """An IPv4 address as itself; an IPv6 one as its /ipv6_prefix network (none at 128)."""
    if ip.version == 4 or ipv6_prefix >= 128:
        return str(ip)
    return str(ipaddress.IPv6Network((int(ip) >> (128 - ipv6_prefix) << (128 - ipv6_prefix), ipv6_prefix)))


def _parse_ip_identity(value: str, ipv6_prefix: int) -> str:
    """`<address>` or, for IPv6, the group as `<network>/<ipv6_prefix>` (overrides, admin API)."""
    address, slash, length = value.partition("/")
    ip = _check_ip(address, "ip")
    if not slash:
        return _ip_identity(ip, ipv6_prefix)
    if ip.version == 4 or length.strip() != str(ipv6_prefix) or ipv6_prefix >= 128:
        group = f"an IPv6 /{ipv6_prefix} network" if ipv6_prefix < 128 else "a single address"
        raise IdentityError(f'ip "{value}" is not a client: a client is an IPv4 address or {group} '
                            "(ipv6_prefix)")
    return _ip_identity(ip, ipv6_prefix)
