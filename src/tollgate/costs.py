"""Per-route costs (`[vars.TOLLGATE.costs]`): parsed at load, and refused when no rule could
ever admit them.

Why its own module: a cost is checked against every rule and override it can meet, which
is its own piece of logic (globs sampled both ways), apart from parsing the rules.
"""
from __future__ import annotations

import re
from typing import Any, Mapping, NamedTuple

from src.tollgate.rules import Match, Rule

# RFC 9110 section 9.1: a method is a token (tchar+), extension methods (PURGE, PROPFIND) included.
METHOD_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


class RouteCost(NamedTuple):
    method: str | None
    match: Match
    cost: int


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_costs(value: Mapping, where: str, errors: list[str]) -> tuple[RouteCost, ...]:
    """`"METHOD /glob" = N` entries in order; each mistake appended to `errors` by its key."""
    out = []
    for key, cost in value.items():
        method, _, pattern = str(key).strip().rpartition(" ")
        method = method.strip().upper() or None
        if method == "*":
            method = None
        if method is not None and not METHOD_TOKEN.match(method):
            errors.append(f'{where}."{key}": {method!r} is not an HTTP method (expected "METHOD /path" or "/path")')
            continue
        if not pattern.startswith("/"):
            errors.append(f'{where}."{key}": expected "METHOD /path*" or "/path*"')
            continue
        if not is_int(cost) or cost < 1:
            errors.append(f'{where}."{key}": expected a positive integer cost, got {cost!r}')
            continue
        out.append(RouteCost(method, Match(None, (pattern,)), cost))
    return tuple(out)


def impossible_costs(costs: tuple[RouteCost, ...], rules: tuple[Rule, ...],
                      overrides: Mapping[str, tuple[tuple[Rule, ...], str | None]], path: str,
                      errors: list[str]) -> None:
    """A route cost above the capacity of an enforcing rule it can meet could never be admitted:
    every such request would get a 400 its client cannot fix. Refused at load instead."""
    base = set(rules)
    for rc in costs:
        label = f"{rc.method} {rc.match.paths[0]}" if rc.method else rc.match.paths[0]
        for where, rule_set in [("", rules)] + [(f' for override "{k}"', v[0]) for k, v in overrides.items()]:
            for rule in rule_set:
                if where and rule in base:      # an override's unchanged rule: reported once, above
                    continue
                if rule.shadow or rc.cost <= rule.limit.capacity or not _may_meet(rule.match, rc):
                    continue
                errors.append(f'{path}.costs."{label}": cost {rc.cost} exceeds rule "{rule.name}"{where}, '
                              f"which admits at most {rule.limit.capacity} at once (its burst or count): "
                              "such a request could never be admitted")


def _may_meet(match: Match, rc: RouteCost) -> bool:
    """Whether some request can be counted by `match` and priced by `rc` (globs sampled both ways)."""
    if match.methods is not None and rc.method is not None and rc.method not in match.methods:
        return False
    if match.paths is None:
        return True
    sample = rc.match.paths[0].replace("*", "x").replace("?", "x")
    method = rc.method or next(iter(sorted(match.methods or ("GET",))))
    if match.matches(method, sample):
        return True
    return any(rc.match.matches(method, p.replace("*", "x").replace("?", "x")) for p in match.paths)
