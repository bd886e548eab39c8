"""The text of a lease call (`ClientBucket.lease`), beside wire.py's decide payload.

A lease call is a decide payload, a newline, and the lease part (JSON never holds a
newline), so the bucket decides the request exactly as `decide` would and then settles the
isolate's leases in the same synchronous step:

    ask:     {"renew":0|1,"want":[[rule,units,overshoot],...],"spent":[[rule,requests,units],...],
              "back":[[rule,lease_id,units],...],"denied":[[rule,n],...]}
    answer:  <decision, as wire.encode_decision> "\n" {"grants":[[rule,lease_id,units,expires_ms,remaining,reset_ms],...]}

`renew`: no request rides along (cost 0, counted nowhere); the isolate only wants leases.
`spent`: what the isolate admitted from its leases since it last said so (usage counts units
admitted, never units granted). `back`: unspent units of leases that ended.
"""
from __future__ import annotations

import json
from typing import Any, NamedTuple

from src.tollgate.wire import WireError


class Ask(NamedTuple):
    renew: bool = False
    want: tuple[tuple[str, int, float], ...] = ()          # rule, units, max_overshoot
    spent: tuple[tuple[str, int, int], ...] = ()           # rule, requests, units
    back: tuple[tuple[str, int, int], ...] = ()            # rule, lease id, units never spent
    denied: tuple[tuple[str, int], ...] = ()               # rule, requests the deny cache answered


class Grant(NamedTuple):
    rule: str
    lease_id: int
    units: int
    expires_ms: int
    remaining: int          # what the bucket still had right after the grant (for RateLimit headers)
    reset_ms: int


def encode_ask(ask: Ask) -> str:
    return json.dumps({"renew": 1 if ask.renew else 0, "want": [list(w) for w in ask.want],
                       "spent": [list(s) for s in ask.spent], "back": [list(b) for b in ask.back],
                       "denied": [list(d) for d in ask.denied]}, separators=(",", ":"))


def decode_ask(text: str) -> Ask:
    """The lease part as the Worker sends it; a malformed one raises WireError (the call fails,
    the Worker falls back to each rule's on_error, nothing is charged)."""
    try:
        obj = json.loads(text)
        return Ask(obj["renew"] == 1,
                   tuple((_name(r), _count(u), float(f)) for r, u, f in obj["want"] if 0 < float(f) <= 0.5),
                   tuple((_name(r), _count(q), _count(u)) for r, q, u in obj["spent"]),
                   tuple((_name(r), int(i), _count(u)) for r, i, u in obj["back"]),
                   tuple((_name(r), _count(n)) for r, n in obj["denied"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise WireError(f"lease ask: not what a Worker sends ({type(exc).__name__}: {exc})") from None


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"rule name expected, got {value!r}")
    return value


def _count(value: Any) -> int:
    if type(value) is not int or value < 0:
        raise ValueError(f"a count >= 0 expected, got {value!r}")
    return value


def encode_grants(decision_text: str, grants: list[Grant]) -> str:
    return decision_text + "\n" + json.dumps({"grants": [list(g) for g in grants]}, separators=(",", ":"))


def split_answer(text: str) -> tuple[str, tuple[Grant, ...]]:
    """(the decision's text, the grants) of a lease call's answer."""
    if not isinstance(text, str) or "\n" not in text:
        raise WireError("lease answer: expected a decision and a grants line")
    decision, _, tail = text.partition("\n")
    try:
        return decision, tuple(Grant(str(r), int(i), int(u), int(e), int(m), int(t))
                               for r, i, u, e, m, t in json.loads(tail)["grants"])
    except (ValueError, KeyError, TypeError) as exc:
        raise WireError(f"lease answer: not what a bucket answers ({type(exc).__name__}: {exc})") from None
