"""Per-client overrides (`[vars.TOLLGATE.overrides."<identity>"]`, and plans): each one
expanded at load time into the client's own rule list, so a request resolves with no
parsing. Errors name their field path, as everywhere in the config."""
from __future__ import annotations

from typing import Any, Mapping

from src.tollgate.algorithms import CONCURRENCY, GCRA, Limit
from src.tollgate.concurrency import parse_concurrent
from src.tollgate.config_fields import did_you_mean as _did_you_mean, kind as _kind, unknown_keys as _unknown_keys
from src.tollgate.costs import is_int
from src.tollgate.identity import Identity, IdentityError
from src.tollgate.labels import LABEL_KEY, parse_label
from src.tollgate.lease_config import lease_problem
from src.tollgate.rates import parse_rate
from src.tollgate.rules import Rule

_OVERRIDE_TABLE_KEYS = ("limit", "burst")


def parse_overrides(value: Any, rules: tuple[Rule, ...], declared: set, ipv6_prefix: int, where: str,
               errors: list[str], labels: dict[str, str] | None = None
               ) -> dict[str, tuple[tuple[Rule, ...], str | None]]:
    """`labels`, when given, receives each override's optional `label` (overrides only, not plans)."""
    if not isinstance(value, Mapping):
        errors.append(f"{where}: expected a table keyed by client identity, got {_kind(value)}")
        return {}
    by_name = {r.name: r for r in rules}
    out = {}
    for ident, table in value.items():
        here = f'{where}."{ident}"'
        try:
            identity = Identity.parse(str(ident), ipv6_prefix)
        except IdentityError as exc:
            errors.append(f"{here}: {exc}")
            continue
        if not isinstance(table, Mapping):
            errors.append(f'{here}: expected a table of rule = "unlimited" | "blocked" | "N/period"')
            continue
        replaced: dict[str, Rule | None] = {}
        blocked = None
        for rule_name, setting in table.items():
            spot = f"{here}.{rule_name}"
            if rule_name == LABEL_KEY and labels is not None:   # reserved: a rule named "label" is not overridable
                label = parse_label(setting, identity.value if identity.kind == "key" else None, spot, errors)
                if label is not None:
                    labels[str(identity)] = label
                continue
            rule = by_name.get(rule_name)
            if rule is None and rule_name in declared:   # a rule with its own mistakes: check the value only
                value = setting.get("limit") if isinstance(setting, Mapping) else setting
                if setting not in ("unlimited", "blocked") and parse_concurrent(value) is None:
                    try:
                        parse_rate(value)
                    except ValueError as exc:
                        errors.append(f'{spot}: {exc}; or "unlimited" | "blocked"')
                continue
            if rule is None:
                errors.append(f"{spot}: no rule is named {rule_name!r}{_did_you_mean(rule_name, declared)}")
                continue
            if setting == "unlimited":
                replaced[rule_name] = None
            elif setting == "blocked":
                blocked = blocked or rule_name
            else:
                limit = _override_limit(rule, setting, spot, errors)
                if limit is not None and (not rule.lease or lease_problem(limit, rule.lease, spot, errors)):
                    replaced[rule_name] = rule._replace(limit=limit)
        effective = tuple(replaced.get(r.name, r) for r in rules if replaced.get(r.name, r) is not None)
        out[str(identity)] = (effective, blocked)
    return out


def _override_limit(rule: Rule, setting: Any, where: str, errors: list[str]) -> Limit | None:
    if rule.limit.algorithm == CONCURRENCY or parse_concurrent(setting) is not None:
        return _override_slots(rule, setting, where, errors)
    burst = None
    if isinstance(setting, Mapping):
        _unknown_keys(setting, _OVERRIDE_TABLE_KEYS, where, errors)
        burst = setting.get("burst")
        setting = setting.get("limit")
    try:
        rate = parse_rate(setting)
    except ValueError as exc:
        errors.append(f'{where}: {exc}; or "unlimited" | "blocked"')
        return None
    if burst is None:
        # keep the rule's burst-to-rate ratio: "20/second, burst 40" overridden to 100/second bursts 200
        burst = max(1, rate.count * rule.limit.burst // rule.limit.count)
    elif rule.limit.algorithm != GCRA or not is_int(burst) or burst < 1:
        errors.append(f"{where}.burst: expected a positive integer on a gcra rule, got {burst!r}")
        return None
    if rule.limit.algorithm != GCRA:
        burst = rate.count
    return Limit(rule.limit.algorithm, rate.count, rate.period_ms, burst)


def _override_slots(rule: Rule, setting: Any, where: str, errors: list[str]) -> Limit | None:
    """A concurrency rule is overridden by another slot count ("50 concurrent"), keeping its hold."""
    if isinstance(setting, Mapping):
        _unknown_keys(setting, ("limit",), where, errors)
        setting = setting.get("limit")
    slots = parse_concurrent(setting)
    if rule.limit.algorithm != CONCURRENCY:
        errors.append(f'{where}: rule "{rule.name}" is a rate; "{setting}" is a concurrency limit')
        return None
    if slots is None or slots < 1:
        errors.append(f'{where}: rule "{rule.name}" counts requests in flight: expected "N concurrent" '
                      f'(N >= 1), "unlimited" or "blocked", got {setting!r}')
        return None
    return rule.limit._replace(count=slots, burst=slots)
