"""`--client` as users write it: `alice`, `key:alice`, `ip:192.0.2.1`, an IPv6 address, the
full client key (64 hex digits) or the prefix `report` prints.

Why: the store only knows clients by their keyed hash (raw keys never leave the Worker),
so an identity is hashed here with the same IDENTITY_SECRET the Worker uses
($IDENTITY_SECRET, else the .dev.vars beside the config), exactly as the Worker does
(src/tollgate/identity.py). When nothing in the store matches, the error says what was
tried, never the secret.
"""
from __future__ import annotations

import os
import re
import sqlite3
import tomllib
from pathlib import Path

from src.tollgate.identity import DEFAULT_IPV6_PREFIX, Identity, IdentityError, client_key

_HEX = re.compile(r"^[0-9a-f]{4,64}$")


def identity_secret(config: Path, name: str = "IDENTITY_SECRET") -> tuple[str | None, str]:
    """(the secret `name`, where it came from): IDENTITY_SECRET, or IDENTITY_SECRET_PREVIOUS
    during a rotation (README "Running Tollgate for a long time")."""
    if os.environ.get(name):
        return os.environ[name], f"${name}"
    dev_vars = config.parent / ".dev.vars"
    if dev_vars.is_file():
        for line in dev_vars.read_text().splitlines():
            line = line.strip().removeprefix("export ").strip()
            if line.startswith(f"{name}="):
                return line.split("=", 1)[1].strip().strip("\"'"), str(dev_vars)
    return None, f"nowhere (set ${name} or put it in .dev.vars beside --config)"


def _ipv6_prefix(config: Path) -> int:
    try:
        value = tomllib.loads(config.read_text()).get("vars", {}).get("TOLLGATE", {}).get("ipv6_prefix")
    except (OSError, tomllib.TOMLDecodeError, AttributeError):
        return DEFAULT_IPV6_PREFIX
    return value if isinstance(value, int) and not isinstance(value, bool) else DEFAULT_IPV6_PREFIX


def _as_identity(text: str, ipv6_prefix: int) -> Identity | None:
    """`text` as the Worker would name the client: a bare IP address is an ip identity here
    (an operator types one to look an address up), anything else as Identity.parse reads it."""
    import ipaddress
    try:
        ipaddress.ip_address(text.strip("[]"))
        text = f"ip:{text}"
    except ValueError:
        pass
    try:
        return Identity.parse(text, ipv6_prefix)
    except IdentityError:
        return None


def resolve_clients(conn: sqlite3.Connection, text: str, config: Path, error: type[Exception]) -> list[str]:
    """The store's client keys that `text` names; `error` (the caller's) when none does."""
    known = [r[0] for r in conn.execute("SELECT DISTINCT client FROM usage")]
    try:   # clients whose hours were all rolled into days (migrations/0002_usage_daily.sql)
        known += [r[0] for r in conn.execute("SELECT DISTINCT client FROM usage_daily")]
    except sqlite3.Error:
        pass
    lowered = text.strip().lower()
    found: list[str] = [text] if text in known else []     # a client key exactly as stored
    tried: list[str] = []
    if _HEX.match(lowered):
        found += [c for c in known if c.startswith(lowered)]
        tried.append(f"a client key starting with {lowered}")
    identity = _as_identity(text.strip(), _ipv6_prefix(config))
    if identity is not None:
        found += _hashed(identity, config, set(known), tried)
    if not found:
        raise error(f"no usage in the store matches --client {text!r}: tried {'; and '.join(tried) or 'nothing'} "
                    f"({len(known)} clients in the store)")
    return sorted(set(found))


def _hashed(identity: Identity, config: Path, known: set[str], tried: list[str]) -> list[str]:
    """The identity's keys under IDENTITY_SECRET and, across a rotation, IDENTITY_SECRET_PREVIOUS:
    the store holds the client under both until the old rows age out."""
    found = []
    for name in ("IDENTITY_SECRET", "IDENTITY_SECRET_PREVIOUS"):
        secret, source = identity_secret(config, name)
        if secret is None:
            if name == "IDENTITY_SECRET":
                tried.append(f"{identity} (not hashed: IDENTITY_SECRET found {source})")
            continue
        key = client_key(secret.encode(), identity)
        tried.append(f"{identity}, whose client key is {key[:16]}... under the {name} from {source}")
        if key in known:
            found.append(key)
    return found
