"""Worker <-> ClientBucket RPC payloads as compact JSON text.

Why text: Durable Object RPC converts Python values to JS and back
(`python_to_rpc` refuses tuples, results come back as `JsDict`), so a JSON
string is the one value both runtimes deliver unchanged. Rules travel as
lists, not objects, to keep the per-request payload small.

decide payload:   {"v":1,"cost":N,"rules":[[name,algorithm,count,period_ms,burst,shadow,on_error(,previous_names)],...]}
                  (previous_names, a list of the rule's former names, only when it has some)
decision result:  {"v":1,"ok":0|1,"by":name|null,"retry":ms,"res":[[name,allowed,shadow,remaining,reset_ms,retry_after_ms],...]}
                  (+ "slot":"<32 hex>" when the admitted decision took a concurrency slot)
"""
from __future__ import annotations

import json
from functools import lru_cache
from typing import Any, Sequence

from src.tollgate.checks import check_int, check_str
from src.tollgate.algorithms import Limit
from src.tollgate.decision import Decision, RuleResult
from src.tollgate.rules import Match, Rule

WIRE_VERSION = 1
_MATCH_ALL = Match(None, None)
_ALGORITHMS = ("gcra", "sliding_window", "fixed_window", "concurrency")
_ON_ERROR = ("open", "closed")
_new = tuple.__new__


class WireError(ValueError):
    """A payload that is not what the other side of the RPC sends."""


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


def _loads(text: str, what: str) -> dict:
    if not isinstance(text, str):
        raise WireError(f"{what}: expected a JSON string, got {type(text).__name__}")
    try:
        obj = json.loads(text)
    except ValueError as exc:
        raise WireError(f"{what}: not JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise WireError(f"{what}: expected a JSON object")
    if obj.get("v") != WIRE_VERSION:
        raise WireError(f"{what}: unsupported wire version {obj.get('v')!r}, expected {WIRE_VERSION}")
    return obj


def _int(value: Any, where: str, minimum: int = 0) -> int:
    return check_int(value, where, WireError, minimum)


def _str(value: Any, where: str) -> str:
    return check_str(value, where, WireError)


def encode_rule(rule: Rule) -> list:
    lim = rule.limit
    item = [rule.name, lim.algorithm, lim.count, lim.period_ms, lim.burst, 1 if rule.shadow else 0, rule.on_error]
    return item + [list(rule.previous_names)] if rule.previous_names else item


def decode_rule(item: Any, where: str = "rule") -> Rule:
    if not isinstance(item, list) or len(item) not in (7, 8):
        raise WireError(f"{where}: expected [name, algorithm, count, period_ms, burst, shadow, on_error"
                        f"(, previous_names)]")
    name, algorithm, count, period_ms, burst, shadow, on_error = item[:7]
    previous = item[7] if len(item) == 8 else []
    if not isinstance(previous, list) or not previous and len(item) == 8:
        raise WireError(f"{where}.previous_names: expected a non-empty list of names")
    previous_names = tuple(_str(p, f"{where}.previous_names[{i}]") for i, p in enumerate(previous))
    name = _str(name, f"{where}.name")
    if algorithm not in _ALGORITHMS:
        raise WireError(f"{where}.algorithm: expected one of {', '.join(_ALGORITHMS)}, got {algorithm!r}")
    if on_error not in _ON_ERROR:
        raise WireError(f"{where}.on_error: expected open or closed, got {on_error!r}")
    if shadow not in (0, 1) or isinstance(shadow, float):
        raise WireError(f"{where}.shadow: expected 0 or 1, got {shadow!r}")
    limit = Limit(algorithm, _int(count, f"{where}.count", 1), _int(period_ms, f"{where}.period_ms", 1),
                  _int(burst, f"{where}.burst", 1))
    return Rule(name, limit, _MATCH_ALL, shadow=bool(shadow), on_error=on_error, previous_names=previous_names)


def encode_decide(rules: Sequence[Rule], cost: int) -> str:
    """The `ClientBucket.decide` argument: the rules that matched and the request's cost."""
    return _dumps({"v": WIRE_VERSION, "cost": cost, "rules": [encode_rule(r) for r in rules]})


@lru_cache(maxsize=256)
def decode_decide(text: str) -> tuple[tuple[Rule, ...], int]:
    """Validate and decode a decide payload. Cached: the Worker sends the same text for
    every request with the same rules and cost, so a bucket validates it once, not per
    decision (the result is immutable; a bad payload raises and is not cached)."""
    obj = _loads(text, "decide payload")
    cost = _int(obj.get("cost"), "decide payload.cost")
    raw = obj.get("rules")
    if not isinstance(raw, list):
        raise WireError("decide payload.rules: expected a list")
    rules = tuple(decode_rule(item, f"decide payload.rules[{i}]") for i, item in enumerate(raw))
    names = [r.name for r in rules]
    if len(set(names)) != len(names):
        raise WireError(f"decide payload.rules: duplicate rule names {names}")
    return rules, cost


def encode_decision(decision: Decision, slot: str | None = None) -> str:
    """The `ClientBucket.decide` result; `new_states` stays inside the bucket. The same text
    `json.dumps(..., separators=(",", ":"))` gives, built by hand: this runs on every decision,
    and the generic encoder of nested lists cost about 4 us of the bucket's CPU on Pyodide.
    `slot`: the concurrency slot the admitted request holds (src/tollgate/concurrency.py)."""
    by = decision.denied_by
    res = ",".join([f"[{_quoted(r[0])},{1 if r[1] else 0},{1 if r[2] else 0},{_num(r[3])},{_num(r[4])},"
                    f"{_num(r[5])}]" for r in decision.results])
    return (f'{{"v":{WIRE_VERSION},"ok":{1 if decision.allowed else 0},"by":{"null" if by is None else _quoted(by)},'
            f'"retry":{_num(decision.retry_after_ms)},"res":[{res}]'
            + ("}" if slot is None else f',"slot":{json.dumps(slot)}}}'))


@lru_cache(maxsize=1024)
def _quoted(name: str) -> str:
    """A rule name as a JSON string (names come from the config: few, so formatted once)."""
    return json.dumps(name)


def _num(value: Any) -> str:
    """An int as JSON text; anything else as json.dumps has it (so the text never differs)."""
    return str(value) if type(value) is int else json.dumps(value)


def decode_decision(text: str) -> Decision:
    """Decode the bucket's answer. It comes from our own bucket, so the shape is trusted
    and not re-validated field by field on every request; anything else (a bucket of
    another version during a deploy) raises WireError, which the gateway treats as a
    bucket failure (each rule's on_error)."""
    return decode_answer(text)[0]


def decode_answer(text: str) -> tuple[Decision, str | None]:
    """`decode_decision` plus the slot the request holds (None: it took none)."""
    obj = _loads(text, "decision")
    slot = obj.get("slot")
    if slot is not None and not isinstance(slot, str):
        raise WireError(f"decision.slot: expected a string, got {type(slot).__name__}")
    try:
        # tuple.__new__: the NamedTuples without their Python-level __new__ (this runs per request)
        return _new(Decision, (obj["ok"] == 1, obj["by"], int(obj["retry"]), tuple([
            _new(RuleResult, (name, allowed == 1, shadow == 1, remaining, reset_ms, retry_ms))
            for name, allowed, shadow, remaining, reset_ms, retry_ms in obj["res"]]), {})), slot
    except (KeyError, TypeError, ValueError) as exc:
        raise WireError(f"decision: not what a bucket answers ({type(exc).__name__}: {exc})") from None
