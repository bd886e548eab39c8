"""One atomic decision over every rule that applies to a request.

All or nothing: the request is admitted only if every enforcing rule admits
it, and then every rule's new state is kept; when it is denied no state
changes at all, so a request refused by the daily quota does not eat the
per-second burst. Shadow rules are evaluated and reported but never deny;
a shadow rule that would deny keeps its state, as if it had been enforced.
"""
from __future__ import annotations

from typing import Mapping, NamedTuple, Sequence

from src.tollgate.algorithms import KERNELS, State
from src.tollgate.rules import Rule


class RuleResult(NamedTuple):
    name: str
    allowed: bool
    shadow: bool
    remaining: int
    reset_ms: int
    retry_after_ms: int


class Decision(NamedTuple):
    allowed: bool
    denied_by: str | None      # the enforcing rule that must wait longest
    retry_after_ms: int        # 0 when allowed
    results: tuple[RuleResult, ...]
    new_states: dict[str, State]


_new = tuple.__new__          # NamedTuple construction without the Python-level __new__: the hot path


def decide(rules: Sequence[Rule], states: Mapping[str, State | None], cost: int, now_ms: int) -> Decision:
    """Decide `cost` units for one client at `now_ms`; pure, the caller stores `new_states`.

    `states` maps rule name to its stored state (missing or None: never used).
    """
    if type(now_ms) is not int or type(cost) is not int or cost < 0:
        # floats would creep into stored state and drift; a negative cost would refund quota
        raise ValueError(f"now_ms and cost must be integers, cost >= 0 (got {now_ms!r}, {cost!r})")
    if len(rules) == 1:                     # the common case, without the loop's bookkeeping
        rule = rules[0]
        name = rule[0]
        limit = rule[1]
        allowed, state, remaining, reset, retry = KERNELS[limit[0]](limit, states.get(name), cost, now_ms)
        if allowed:
            return _new(Decision, (True, None, 0, (_new(RuleResult, (name, True, rule[3], remaining, reset, 0)),),
                                   {name: state}))
        result = _new(RuleResult, (name, False, rule[3], remaining, reset, retry))
        if rule[3]:                         # shadow: reported, never denies
            return _new(Decision, (True, None, 0, (result,), {}))
        return _new(Decision, (False, name, retry, (result,), {}))
    get = states.get
    results = []
    new_states: dict[str, State] = {}
    denied_by = None
    retry_max = 0
    for name, limit, _, shadow, *_ in rules:   # Rule: name, limit, match, shadow, on_error, previous_names, ...
        allowed, state, remaining, reset, retry = KERNELS[limit[0]](limit, get(name), cost, now_ms)
        results.append(_new(RuleResult, (name, allowed, shadow, remaining, reset, retry)))
        if allowed:
            new_states[name] = state
        elif not shadow and (denied_by is None or retry > retry_max):
            denied_by, retry_max = name, retry
    if denied_by is None:
        return _new(Decision, (True, None, 0, tuple(results), new_states))
    return _new(Decision, (False, denied_by, retry_max, _unconsumed(rules, results, states, now_ms), {}))


def _unconsumed(rules: Sequence[Rule], results: list[RuleResult], states: Mapping[str, State | None],
                now_ms: int) -> tuple[RuleResult, ...]:
    """On denial nothing was consumed: report the rules that would have admitted as they stand."""
    out = []
    for rule, res in zip(rules, results):
        if res.allowed:
            limit = rule.limit
            _, _, remaining, reset, _ = KERNELS[limit.algorithm](limit, states.get(rule.name), 0, now_ms)
            res = _new(RuleResult, (res.name, True, res.shadow, remaining, reset, 0))
        out.append(res)
    return tuple(out)
