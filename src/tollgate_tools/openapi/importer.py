"""OpenAPI extensions → the `[vars.TOLLGATE]` table, checked by the Worker's parser.

Why the check against every operation: a Tollgate rule matches a set of
methods times a set of path globs, and `*` also matches `/`, so the rule
built for some operations may count others too. After parsing the result
with `src.tollgate.config.parse_config` (the same code the Worker runs), each
operation of the spec is resolved through the parsed config and compared with
what its extensions asked for; every difference is reported.
"""
from __future__ import annotations

from typing import Any, NamedTuple

from src.tollgate.config import ConfigError, parse_config
from src.tollgate_tools.openapi.extensions import (KONG_EXT, TOLLGATE_EXT, OperationLimits, RuleRef,
                                                   document_settings, kong_identity, kong_limits, tollgate_limits,
                                                   where_of)
from src.tollgate_tools.openapi.spec import Document, Operation, SpecError, base_path, extension, operations


class Imported(NamedTuple):
    tollgate: dict          # the [vars.TOLLGATE] table
    warnings: list[str]     # what could not be expressed exactly
    limited: int            # operations counted by at least one rule
    config: Any             # the parsed src.tollgate.config.Config


class _Rule:
    def __init__(self, name: str) -> None:
        self.name, self.definition, self.defined_at, self.ops = name, {}, "", []


def limits_of(raw: dict, op: Operation, warnings: list[str]) -> OperationLimits:
    """The nearest x-tollgate and the nearest Kong plugin of one operation, together."""
    refs: list[RuleRef] = []
    cost = None
    found = extension(raw, op, TOLLGATE_EXT)
    if found is not None and found[0] != "document":
        own = tollgate_limits(op, found[1], where_of(op, found[0], TOLLGATE_EXT))
        refs += own.rules
        cost = own.cost
    kong = extension(raw, op, KONG_EXT, skip=_disabled)
    if kong is not None:
        refs += kong_limits(op, kong[1], kong[0], where_of(op, kong[0], KONG_EXT), warnings).rules
    return OperationLimits(tuple(refs), cost)


def _disabled(plugin: Any) -> bool:
    """Kong loads only enabled plugins: a disabled one leaves the next level's in force."""
    return isinstance(plugin, dict) and plugin.get("enabled", True) is False


def import_spec(doc: Document, base: str | None = None, identity: list[str] | None = None) -> Imported:
    raw = doc.raw
    prefix = base_path(raw, base)
    ops = list(operations(raw, prefix))
    if not ops:
        raise SpecError(f"{doc.source}: the spec has no operations")
    warnings: list[str] = []
    settings = document_settings(raw)
    global_rules = settings.pop("rules", [])
    if not isinstance(global_rules, list):
        raise SpecError(f"{TOLLGATE_EXT}.rules: expected a list of rule tables")
    global_names = {r.get("name") for r in global_rules if isinstance(r, dict)}
    rules: dict[str, _Rule] = {}
    wanted: list[tuple[Operation, OperationLimits]] = []
    for op in ops:
        limits = limits_of(raw, op, warnings)
        wanted.append((op, limits))
        for ref in limits.rules:
            _collect(rules, global_names, op, ref)
    for rule in rules.values():
        if not rule.definition:
            raise SpecError(f"{rule.ops[0][1]}.rule: no operation defines rule {rule.name!r} (give it a limit "
                            "on one operation, with `limit`)")
    tollgate: dict[str, Any] = dict(settings)
    kong_doc = raw.get(KONG_EXT)
    if "identity" not in tollgate and isinstance(kong_doc, dict) and isinstance(kong_doc.get("config"), dict):
        sources = kong_identity(kong_doc["config"], KONG_EXT, warnings)
        if sources:
            tollgate["identity"] = sources
    if identity:
        tollgate["identity"] = list(identity)
    tollgate["rules"] = list(global_rules) + [_rule_table(r, ops) for r in rules.values()]
    costs = _costs(wanted)
    if costs:
        tollgate["costs"] = costs
    if not tollgate["rules"]:
        raise SpecError(f"{doc.source}: no operation carries {TOLLGATE_EXT} or {KONG_EXT} with a limit: "
                        "the imported config would limit nothing")
    config = _parse(tollgate, rules, len(global_rules))
    warnings += _differences(config, wanted, global_rules)
    limited = sum(1 for op in ops if any(r.match.matches(op.method, op.sample) for r in config.rules))
    return Imported(tollgate, warnings, limited, config)


def _collect(rules: dict[str, _Rule], global_names: set, op: Operation, ref: RuleRef) -> None:
    if ref.name in global_names:
        raise SpecError(f"{ref.where}: rule {ref.name!r} is defined in the document-level {TOLLGATE_EXT}.rules "
                        "with its own match; an operation cannot also name it")
    rule = rules.setdefault(ref.name, _Rule(ref.name))
    if ref.definition:
        if rule.definition and rule.definition != ref.definition:
            raise SpecError(f"{ref.where}: rule {ref.name!r} is already defined differently at {rule.defined_at} "
                            f"({rule.definition} vs {ref.definition}): give one of them another name")
        rule.definition, rule.defined_at = ref.definition, rule.defined_at or ref.where
    if all(o is not op for o, _ in rule.ops):
        rule.ops.append((op, ref.where))


def _rule_table(rule: _Rule, ops: list[Operation]) -> dict:
    """The rule with the narrowest match Tollgate can say for its operations."""
    mine = [op for op, _ in rule.ops]
    table = {"name": rule.name, **rule.definition}
    if len(mine) == len(ops):
        return table                                   # every operation: no match at all
    globs = list(dict.fromkeys(op.glob for op in mine))
    whole_paths = all(any(o is op for o in mine) for op in ops if op.glob in globs)
    if whole_paths:                                    # every method of these paths
        table["match"] = {"paths": globs}
    else:
        table["match"] = {"methods": list(dict.fromkeys(op.method for op in mine)), "paths": globs}
    return table


def _costs(wanted: list[tuple[Operation, OperationLimits]]) -> dict[str, int]:
    """Route costs, the most specific path first (Tollgate takes the first that matches)."""
    entries = [(op, limits.cost) for op, limits in wanted if limits.cost is not None]
    entries.sort(key=lambda e: (-e[0].glob.count("/"), e[0].glob.count("*"), -len(e[0].glob)))
    return {f"{op.method} {op.glob}": cost for op, cost in entries}


def _parse(tollgate: dict, rules: dict[str, _Rule], offset: int) -> Any:
    try:
        return parse_config(tollgate)
    except ConfigError as exc:
        origins = {f"TOLLGATE.rules[{offset + i}]": r.defined_at for i, r in enumerate(rules.values())}
        lines = []
        for error in exc.errors:
            origin = next((w for key, w in origins.items() if error.startswith(key + ".") or
                           error.startswith(key + ":")), None)
            lines.append(f"{error}" + (f" (from {origin})" if origin else ""))
        raise SpecError("the imported rules are not a valid Tollgate config:\n  " + "\n  ".join(lines)) from exc


def _differences(config: Any, wanted: list[tuple[Operation, OperationLimits]], global_rules: list) -> list[str]:
    """Where the parsed config counts or charges an operation otherwise than its extensions say."""
    always = {r["name"] for r in global_rules if isinstance(r, dict) and "match" not in r}
    out = []
    for op, limits in wanted:
        expected = {ref.name for ref in limits.rules}
        matched = {r.name for r in config.rules if r.match.matches(op.method, op.sample)}
        extra = sorted(matched - expected - always - {r.get("name") for r in global_rules if isinstance(r, dict)})
        if extra:
            out.append(f"{op.label}: also counted by {', '.join(extra)} (Tollgate paths match methods x globs, "
                       "and * spans /): name the rule on this operation too if that is intended")
        cost = config.cost_for(op.method, op.sample)
        if cost != (limits.cost or 1):
            out.append(f"{op.label}: costs {cost} through another route's entry, not {limits.cost or 1}")
    return out
