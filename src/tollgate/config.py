"""`[vars.TOLLGATE]` from wrangler.toml: validated once, then resolved per request.

Validation collects every mistake, each naming its field path and what was
expected, so an operator fixes a config in one round trip:
`TOLLGATE.rules[1].limit: "100/minnute" is not a rate (expected ...)`.
Resolution is the per-request part and does no parsing: overrides are
expanded into their own rule lists at load time.
"""
from __future__ import annotations

import re
from typing import Any, Mapping, NamedTuple

from src.tollgate.algorithms import ALGORITHMS, GCRA, Limit
from src.tollgate.concurrency import check_hold_only_here, check_rule as check_concurrency_rule
from src.tollgate.concurrency import concurrency_limit, lease_refusal, parse_concurrent
from src.tollgate.costs import METHOD_TOKEN, RouteCost, impossible_costs, is_int, parse_costs
from src.tollgate.edge_settings import DEFAULT_DENY_CACHE_S, parse_deny_cache
from src.tollgate.identity import DEFAULT_IPV6_PREFIX, Identity, Source, parse_source
from src.tollgate.lease_config import MODES, parse_lease
from src.tollgate.identity_layers import NO_LAYERS, Layers, check_sources, parse_layers, rule_keys
from src.tollgate.config_fields import bool_field as _bool, did_you_mean as _did_you_mean, kind as _kind
from src.tollgate.config_fields import unknown_keys as _unknown_keys
from src.tollgate.overrides import parse_overrides as _overrides
from src.tollgate.rates import parse_rate
from src.tollgate.renames import check_renames, parse_previous_names
from src.tollgate.rules import MATCH_ALL, Match, Rule

DEFAULT_IDENTITY = ("header:x-api-key", "bearer", "ip")
DEFAULT_MAX_COST = 1000
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_TOP_KEYS = ("identity", "trust_forwarded_for", "ipv6_prefix", "partition_key", "legacy_headers", "max_cost",
             "rules", "costs", "overrides", "plans", "known_keys", "jwt", "deny_cache_seconds")
_RULE_KEYS = ("name", "limit", "algorithm", "burst", "match", "shadow", "on_error", "key", "previous_names",
              "hold_seconds", "mode", "max_overshoot")
_MATCH_KEYS = ("methods", "paths")
_LIST = (list, tuple)          # TOML arrays arrive as lists; a JSON or Python caller may pass tuples


class ConfigError(ValueError):
    """Every mistake in the config, one line each."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))


class Resolution(NamedTuple):
    rules: tuple[Rule, ...]      # the rules that apply to this request, overrides applied
    cost: int
    blocked_by: str | None       # a `blocked` override: refuse without asking the bucket


class Config(NamedTuple):
    identity: tuple[Source, ...]
    rules: tuple[Rule, ...]
    costs: tuple[RouteCost, ...]
    overrides: dict[str, tuple[tuple[Rule, ...], str | None]]   # str(Identity) -> (rules, blocked rule)
    legacy_headers: bool
    max_cost: int
    ipv6_prefix: int = DEFAULT_IPV6_PREFIX       # IPv6 clients are grouped by this network
    partition_key: bool = False                  # send draft-11 `pk` (a pseudonym of the client)
    plans: dict[str, tuple[tuple[Rule, ...], str | None]] = {}   # plan name -> as overrides (identity.plan)
    layers: Layers = NO_LAYERS                   # known keys, JWT (src/tollgate/identity_layers.py)
    rule_keys: dict[str, Source] = {}            # rule name -> the identity it counts per (`key = "ip"`)
    labels: dict[str, str] = {}                  # str(Identity) -> an override's `label` (the dashboard)
    deny_cache_ms: int = DEFAULT_DENY_CACHE_S * 1000   # worker/deny_cache.py cap (src/tollgate/edge_settings.py)

    def cost_for(self, method: str, path: str) -> int:
        for rc in self.costs:
            if (rc.method is None or rc.method == method) and rc.match.matches(method, path):
                return rc.cost
        return 1

    def resolve(self, identity: Identity | None, method: str, path: str) -> Resolution:
        rules, blocked = self.rules, None
        if identity is not None:
            found = self.overrides.get(str(identity)) if self.overrides else None
            if found is None and identity.plan is not None:   # an override for the client beats its plan
                found = self.plans.get(identity.plan)
            if found is not None:
                rules, blocked = found
        if blocked is not None:
            return Resolution((), 0, blocked)
        return Resolution(tuple(r for r in rules if r.match.matches(method, path)),
                          self.cost_for(method, path), None)

    def rule(self, name: str) -> Rule | None:
        for r in self.rules:
            if r.name == name:
                return r
        return None


def parse_config(raw: Any, path: str = "TOLLGATE") -> Config:
    """Validate `raw` (the parsed [vars.TOLLGATE] table); ConfigError lists every problem."""
    errors: list[str] = []
    if not isinstance(raw, Mapping):
        raise ConfigError([f"{path}: expected a table ([vars.TOLLGATE]), got {_kind(raw)}"])
    _unknown_keys(raw, _TOP_KEYS, path, errors)
    trust = _bool(raw, "trust_forwarded_for", False, path, errors)
    legacy = _bool(raw, "legacy_headers", False, path, errors)
    partition = _bool(raw, "partition_key", False, path, errors)
    max_cost = raw.get("max_cost", DEFAULT_MAX_COST)
    if not is_int(max_cost) or max_cost < 1:
        errors.append(f"{path}.max_cost: expected a positive integer, got {max_cost!r}")
        max_cost = DEFAULT_MAX_COST
    ipv6_prefix = raw.get("ipv6_prefix", DEFAULT_IPV6_PREFIX)
    if not is_int(ipv6_prefix) or not 16 <= ipv6_prefix <= 128:
        errors.append(f"{path}.ipv6_prefix: expected a prefix length 16..128 (64: one IPv6 subscriber; "
                      f"128: every address apart), got {ipv6_prefix!r}")
        ipv6_prefix = DEFAULT_IPV6_PREFIX
    identity = _identity(raw.get("identity", list(DEFAULT_IDENTITY)), trust, ipv6_prefix, f"{path}.identity",
                         errors)
    rules = _rules(raw.get("rules"), f"{path}.rules", errors)
    costs = _costs(raw.get("costs", {}), f"{path}.costs", errors)
    raw_rules = raw.get("rules") if isinstance(raw.get("rules"), _LIST) else []
    declared = {item.get("name") for item in raw_rules
                if isinstance(item, Mapping) and isinstance(item.get("name"), str)}
    labels: dict[str, str] = {}
    overrides = _overrides(raw.get("overrides", {}), rules, declared, ipv6_prefix, f"{path}.overrides", errors,
                           labels)
    plans = {k[4:]: v for k, v in _overrides(raw.get("plans", {}), rules, declared, ipv6_prefix,
                                             f"{path}.plans", errors).items()}   # "key:<plan>" -> "<plan>"
    impossible_costs(costs, rules, {**overrides, **{f"plan:{k}": v for k, v in plans.items()}}, path, errors)
    layers, keys = parse_layers(raw, path, errors), rule_keys(raw_rules, trust, ipv6_prefix, f"{path}.rules", errors)
    check_sources(identity, keys, layers, path, errors)
    deny_cache_ms = parse_deny_cache(raw, path, errors)
    if errors:
        raise ConfigError(errors)
    return Config(identity, rules, costs, overrides, legacy, max_cost, ipv6_prefix, partition, plans, layers, keys,
                  labels, deny_cache_ms)


# ------------------------------------------------------------------ pieces

def _identity(value: Any, trust: bool, ipv6_prefix: int, where: str, errors: list[str]) -> tuple[Source, ...]:
    if not isinstance(value, _LIST) or not value:
        errors.append(f'{where}: expected a non-empty list such as ["header:x-api-key", "bearer", "ip"], '
                      f"got {_kind(value)}")
        return ()
    out = []
    for i, spec in enumerate(value):
        try:
            out.append(parse_source(spec, trust, ipv6_prefix))
        except ValueError as exc:
            errors.append(f"{where}[{i}]: {exc}")
    return tuple(out)


def _rules(value: Any, where: str, errors: list[str]) -> tuple[Rule, ...]:
    if value is None:
        errors.append(f"{where}: expected at least one [[vars.TOLLGATE.rules]] table")
        return ()
    if not isinstance(value, _LIST):
        errors.append(f"{where}: expected a list of tables ([[vars.TOLLGATE.rules]]), got {_kind(value)}")
        return ()
    if not value:
        errors.append(f"{where}: expected at least one [[vars.TOLLGATE.rules]] table, got an empty list")
        return ()
    out, seen = [], set()
    for i, item in enumerate(value):
        rule = _rule(item, f"{where}[{i}]", errors)
        name = item.get("name") if isinstance(item, Mapping) else None
        if isinstance(name, str) and name in seen:    # even when the rule has other mistakes
            errors.append(f'{where}[{i}].name: "{name}" is already the name of another rule')
            continue
        if isinstance(name, str):
            seen.add(name)
        if rule is not None:
            out.append(rule)
    check_renames(out, where, errors)
    return tuple(out)


def _rule(item: Any, where: str, errors: list[str]) -> Rule | None:
    if not isinstance(item, Mapping):
        errors.append(f"{where}: expected a table with name and limit, got {_kind(item)}")
        return None
    before = len(errors)
    _unknown_keys(item, _RULE_KEYS, where, errors)
    name = item.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        errors.append(f"{where}.name: expected 1-64 letters, digits, '_', '-' or '.', got {name!r}")
    algorithm = item.get("algorithm", GCRA)
    if algorithm not in ALGORITHMS:
        errors.append(f"{where}.algorithm: {algorithm!r} is not an algorithm "
                      f"(expected {' | '.join(ALGORITHMS)}){_did_you_mean(algorithm, ALGORITHMS)}")
    rate, slots = None, parse_concurrent(item.get("limit"))
    if "limit" not in item:
        errors.append(f'{where}.limit: missing (expected a rate such as "100/minute")')
    elif slots is not None:      # "10 concurrent" (src/tollgate/concurrency.py)
        hold_s = check_concurrency_rule(item, slots, where, errors)
    else:
        check_hold_only_here(item, where, errors)
        try:
            rate = parse_rate(item["limit"])
        except ValueError as exc:
            errors.append(f"{where}.limit: {exc}")
    burst = item.get("burst")
    if burst is not None:
        if algorithm != GCRA:
            errors.append(f"{where}.burst: only the gcra algorithm has a burst ({algorithm} counts whole windows)")
        elif not is_int(burst) or burst < 1:
            errors.append(f"{where}.burst: expected a positive integer, got {burst!r}")
    match = _match(item.get("match"), f"{where}.match", errors)
    shadow = _bool(item, "shadow", False, where, errors)
    on_error = item.get("on_error", "open")
    if on_error not in ("open", "closed"):
        errors.append(f"{where}.on_error: expected open | closed, got {on_error!r}"
                      f"{_did_you_mean(on_error, ('open', 'closed'))}")
    previous = parse_previous_names(item.get("previous_names"), f"{where}.previous_names", errors)
    if len(errors) > before or (rate is None and slots is None):
        return None
    if slots is not None:
        rule = Rule(name, concurrency_limit(slots, hold_s), match, shadow, on_error, previous)
        mode = item.get("mode", "strict")
        refused = lease_refusal(rule, mode) or (None if mode in MODES else f'expected "strict", got {mode!r}')
        if refused is not None:
            errors.append(f"{where}.mode: {refused}")
            return None
        if "max_overshoot" in item:
            errors.append(f'{where}.max_overshoot: only a rule with mode = "lease" has one')
            return None
        return rule
    limit = Limit(algorithm, rate.count, rate.period_ms, burst if burst is not None else rate.count)
    lease = parse_lease(item, limit, shadow, where, errors)
    if len(errors) > before:
        return None
    return Rule(name, limit, match, shadow, on_error, previous, lease)


def _match(value: Any, where: str, errors: list[str]) -> Match:
    if value is None:
        return MATCH_ALL
    if not isinstance(value, Mapping):
        errors.append(f'{where}: expected a table such as {{ methods = ["GET"], paths = ["/v1/*"] }}')
        return MATCH_ALL
    _unknown_keys(value, _MATCH_KEYS, where, errors)
    methods = value.get("methods")
    if methods is not None:
        if not isinstance(methods, _LIST) or not methods or not all(isinstance(m, str) for m in methods):
            errors.append(f'{where}.methods: expected a list of HTTP methods such as ["GET", "POST"]')
            methods = None
        else:
            for m in methods:
                if not METHOD_TOKEN.match(m):
                    errors.append(f"{where}.methods: {m!r} is not an HTTP method (a token such as GET or PURGE)")
    paths = value.get("paths")
    if paths is not None:
        if not isinstance(paths, _LIST) or not paths or not all(isinstance(p, str) for p in paths):
            errors.append(f'{where}.paths: expected a list of path patterns such as ["/v1/search*"]')
            paths = None
        else:
            for p in paths:
                if not p.startswith("/") and p != "*":
                    errors.append(f"{where}.paths: {p!r} must start with / (a glob: * matches anything)")
    return Match(frozenset(m.upper() for m in methods) if methods else None, tuple(paths) if paths else None)


def _costs(value: Any, where: str, errors: list[str]) -> tuple[RouteCost, ...]:
    if not isinstance(value, Mapping):
        errors.append(f'{where}: expected a table such as {{ "POST /v1/search" = 5 }}, got {_kind(value)}')
        return ()
    return parse_costs(value, where, errors)
