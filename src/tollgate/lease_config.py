"""A rule's `mode` and `max_overshoot` (leased budgets, issue 13), checked for config.py.

Why refuse here and not at request time: a lease rule whose bound cannot be met (a
per-second burst rule at 1 % lives 10 ms, shorter than a far isolate's round trip) would
either break the operator's stated overshoot or save nothing; and the operator should learn
that from `wrangler deploy`, not from a bill. `unleasable` (lease.py) says why.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

from src.tollgate.algorithms import Limit
from src.tollgate.lease import DEFAULT_MAX_OVERSHOOT, unleasable

MODES = ("strict", "lease")
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


def parse_max_overshoot(value: Any) -> float:
    """`"1%"` -> 0.01. Only a percentage string: a bare 0.01 reads as either 1 % or 0.01 %."""
    m = _PERCENT.match(value) if isinstance(value, str) else None
    if m is None:
        raise ValueError(f'expected a percentage of the limit such as "1%" or "0.5%", got {value!r}')
    return float(m.group(1)) / 100


def parse_lease(item: Mapping, limit: Limit | None, shadow: bool, where: str, errors: list[str]) -> float:
    """The rule's lease field: its max_overshoot when `mode = "lease"`, else 0.0 (strict)."""
    mode = item.get("mode", "strict")
    if mode not in MODES:
        errors.append(f'{where}.mode: expected "strict" (the default: every request asks the bucket) or '
                      f'"lease" (isolates spend leased budgets), got {mode!r}')
        return 0.0
    if mode == "strict":
        if "max_overshoot" in item:
            errors.append(f'{where}.max_overshoot: only a rule with mode = "lease" has one (strict never '
                          f"over-admits)")
        return 0.0
    try:
        overshoot = parse_max_overshoot(item.get("max_overshoot", f"{DEFAULT_MAX_OVERSHOOT:.0%}"))
    except ValueError as exc:
        errors.append(f"{where}.max_overshoot: {exc}")
        return 0.0
    if shadow:
        errors.append(f'{where}.mode: a shadow rule only reports, so leasing it saves nothing; use mode = "strict"')
        return 0.0
    return lease_problem(limit, overshoot, f"{where}.mode", errors)


def lease_problem(limit: Limit | None, overshoot: float, where: str, errors: list[str]) -> float:
    """`overshoot` if `limit` can be leased within it, else 0.0 and an error naming why."""
    if limit is None:
        return 0.0
    why = unleasable(limit, overshoot)
    if why is not None:
        errors.append(f'{where}: "lease" refused: {why}')
        return 0.0
    return overshoot
