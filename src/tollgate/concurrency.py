"""Concurrency limits (issue 14): at most N requests of a client in flight at once.

A rate bounds how often a client calls; a slot bounds how much of the origin it holds.
`limit = "10 concurrent"` is a rule like the rate rules (match, shadow, on_error,
overrides) and is decided in the same atomic decision: a request gets a slot and its
rate budget, or neither.

The slot math is pure and lives here: the bucket keeps its live slots
(durable_objects/slots.py) as `slot id -> (renewed_ms, {rule: hold_ms})` and hands
`decide()` a summary per rule, `(live, earliest expiry, CONCURRENCY_TAG)`, which the
`concurrency` kernel in algorithms.py reads. A slot of rule r expires at
`renewed_ms + hold_ms[r]`; an expired slot counts as free, so a release that never
comes (the isolate died) blocks for at most the rule's hold.

The release token names the bucket (the client key, the Durable Object's name) and
the slot (128 random bits the bucket holds), signed with IDENTITY_SECRET so a forged
token is refused by the Worker before any RPC; a well-signed token whose slot is gone
(released twice, expired) is a no-op in the bucket.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any, Iterable, Mapping, Sequence

from src.tollgate.algorithms import CONCURRENCY, CONCURRENCY_TAG, Limit, State
from src.tollgate.rules import Rule

DEFAULT_HOLD_S = 60
MAX_HOLD_S = 86_400
RENEWALS_PER_HOLD = 3            # a holder renews every hold / 3: two renewals may be lost before it expires
_CONCURRENT = re.compile(r"^\s*(\d+)\s+concurrent\s*$", re.IGNORECASE)
_SLOT = re.compile(r"^[0-9a-f]{32}$")
_KEY = re.compile(r"^[0-9a-f]{64}$")
_TOKEN_DOMAIN = b"tollgate-slot\0"
TOKEN_VERSION = "s1"

Slots = Mapping[str, tuple[int, Mapping[str, int]]]   # slot id -> (renewed_ms, {rule: hold_ms})


def parse_concurrent(text: Any) -> int | None:
    """"10 concurrent" -> 10; None when `text` is not of that form (then it may be a rate)."""
    if not isinstance(text, str):
        return None
    m = _CONCURRENT.match(text)
    return int(m.group(1)) if m else None


def concurrency_limit(slots: int, hold_s: int) -> Limit:
    """The Limit of a concurrency rule: `count` slots, `period_ms` the hold of a lost slot."""
    return Limit(CONCURRENCY, slots, hold_s * 1000, slots)


def is_concurrency(rule: Rule) -> bool:
    return rule.limit.algorithm == CONCURRENCY


def summaries(slots: Slots, rules: Iterable[Rule], now_ms: int) -> dict[str, State]:
    """The `decide()` state of each concurrency rule in `rules`: its live slots at `now_ms`."""
    out: dict[str, State] = {}
    for rule in rules:
        if rule.limit.algorithm != CONCURRENCY:
            continue
        live, earliest = 0, 0
        for renewed, holds in slots.values():
            hold = holds.get(rule.name)
            if hold is not None and renewed + hold > now_ms:
                live += 1
                if earliest == 0 or renewed + hold < earliest:
                    earliest = renewed + hold
        out[rule.name] = (live, earliest, CONCURRENCY_TAG)
    return out


def holds_taken(rules: Sequence[Rule], results: Sequence[Any]) -> dict[str, int]:
    """{rule: hold_ms} of the concurrency rules an admitted decision took a slot in (a shadow
    rule that would have denied takes none: it reports, it does not count)."""
    return {rule.name: rule.limit.period_ms for rule, res in zip(rules, results)
            if rule.limit.algorithm == CONCURRENCY and res.allowed}


def expired(slots: Slots, now_ms: int) -> list[str]:
    """Slots every rule of which has expired: free, and their rows can go."""
    return [slot for slot, (renewed, holds) in slots.items()
            if all(renewed + hold <= now_ms for hold in holds.values())]


def renew_interval_ms(rules: Iterable[Rule]) -> int:
    """How often a holder renews: a third of the shortest hold among the concurrency rules."""
    holds = [r.limit.period_ms for r in rules if r.limit.algorithm == CONCURRENCY]
    return max(1, min(holds) // RENEWALS_PER_HOLD) if holds else 0


def is_slot_id(value: Any) -> bool:
    return isinstance(value, str) and _SLOT.match(value) is not None


# ------------------------------------------------------------------ the release token
def _mac(secret: bytes, client_key: str, slot: str) -> str:
    return hmac.new(secret, _TOKEN_DOMAIN + f"{client_key}.{slot}".encode(), hashlib.sha256).hexdigest()[:32]


def make_token(secret: bytes, client_key: str, slot: str) -> str:
    """`s1.<client key>.<slot id>.<mac>`: what /allow hands a gateway to free the slot."""
    return f"{TOKEN_VERSION}.{client_key}.{slot}.{_mac(secret, client_key, slot)}"


def read_token(secret: bytes, token: Any) -> tuple[str, str] | None:
    """(client key, slot id) of a token this deployment issued; None for anything else."""
    if not isinstance(token, str) or len(token) > 200:
        return None
    parts = token.strip().split(".")
    if len(parts) != 4 or parts[0] != TOKEN_VERSION or not _KEY.match(parts[1]) or not _SLOT.match(parts[2]):
        return None
    if not hmac.compare_digest(parts[3], _mac(secret, parts[1], parts[2])):
        return None
    return parts[1], parts[2]


def lease_refusal(rule: Rule, mode: str | None) -> str | None:
    """Concurrency rules are always strict: a lease hands an isolate units to spend without
    asking, but a slot must be taken and given back at the bucket, one request at a time,
    or "N in flight" means nothing. config.py calls this for a rule's `mode` (lease mode)."""
    if mode == "lease" and rule.limit.algorithm == CONCURRENCY:
        return 'mode = "lease" cannot apply to a concurrency rule: slots are always decided by the bucket (strict)'
    return None


# ------------------------------------------------------------------ config (config.py calls these)
def check_rule(item: Mapping, slots: int, where: str, errors: list[str]) -> int:
    """The mistakes only a concurrency rule can make; returns its hold in seconds."""
    if slots < 1:
        errors.append(f'{where}.limit: "{item.get("limit")}": at least 1 concurrent request')
    for key, why in (("algorithm", "a concurrency rule counts requests in flight, it has no algorithm"),
                     ("burst", "a concurrency rule has no burst (N concurrent is the most at once)"),
                     ("key", "a concurrency rule counts per the request's own identity")):
        if key in item:
            errors.append(f"{where}.{key}: {why}")
    hold = item.get("hold_seconds", DEFAULT_HOLD_S)
    if isinstance(hold, bool) or not isinstance(hold, int) or not 1 <= hold <= MAX_HOLD_S:
        errors.append(f"{where}.hold_seconds: expected whole seconds 1..{MAX_HOLD_S} (how long a slot whose "
                      f"holder stopped renewing it still counts; default {DEFAULT_HOLD_S}), got {hold!r}")
        return DEFAULT_HOLD_S
    return hold


def check_hold_only_here(item: Mapping, where: str, errors: list[str]) -> None:
    if "hold_seconds" in item:
        errors.append(f'{where}.hold_seconds: only a concurrency rule (limit = "N concurrent") has a hold')
