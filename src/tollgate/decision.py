"""One atomic decision over every rule that applies to a request.

All or nothing: the request is admitted only if every enforcing rule admits
it, and then every rule's new state is kept; when it is denied no state
changes at all, so a request refused by the daily quota does not eat the
per-second burst. Shadow rules are evaluated and reported but never deny;
a shadow rule that would deny keeps its state, as if it had been enforced.
"""
from __future__ import annotations

from typing import Mapping, NamedTuple, Sequence

from src.tollgate.algorithms import State, step
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


def decide(rules: Sequence[Rule], states: Mapping[str, State | None], cost: int, now_ms: int) -> Decision:
    """Decide `cost` units for one client at `now_ms`; pure, the caller stores `new_states`."""
    results = []
    new_states: dict[str, State] = {}
    denied_by = None
    retry = 0
    for rule in rules:
        s = step(rule.limit, states.get(rule.name), cost, now_ms)
        results.append(RuleResult(rule.name, s.allowed, rule.shadow, s.remaining, s.reset_ms, s.retry_after_ms))
        if s.allowed:
            new_states[rule.name] = s.state
        elif not rule.shadow and (denied_by is None or s.retry_after_ms > retry):
            denied_by, retry = rule.name, s.retry_after_ms
    if denied_by is not None:
        # Nothing was consumed: rules that would have admitted still have `cost` more left.
        return Decision(False, denied_by, retry, tuple(
            r._replace(remaining=r.remaining + cost) if r.allowed else r for r in results), {})
    return Decision(True, None, 0, tuple(results), new_states)
