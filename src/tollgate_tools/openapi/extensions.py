"""The two extension formats, read into one shape: which rules an operation is
counted by, and what it costs.

`x-tollgate` (ours), on an operation or a path item (a mapping, or a list of them):
    {rule: search, limit: "100/minute", cost: 5, algorithm, burst, shadow, on_error}
`rule` alone refers to a rule defined on another operation; `limit` without
`rule` names the rule after the operation; `cost` alone only sets a cost. At
the document level it holds Tollgate's top-level settings (identity, ...) and
`rules`, full rule tables used as they are.

`x-kong-plugin-rate-limiting` (Kong's, as decK/openapi2kong read it):
    {enabled: true, config: {second, minute, hour, day, month, year, limit_by,
     header_name, fault_tolerant, ...}}
Kong counts fixed windows, each period apart; a document-level plugin is a
service plugin (one counter for every route), a path- or operation-level one
belongs to each route (a counter per operation), and the nearest one wins.
"""
from __future__ import annotations

import re
from typing import Any, NamedTuple

from src.tollgate_tools.openapi.spec import Operation, SpecError

TOLLGATE_EXT = "x-tollgate"
KONG_EXT = "x-kong-plugin-rate-limiting"
OPERATION_KEYS = ("rule", "limit", "cost", "algorithm", "burst", "shadow", "on_error")
DEFINITION_KEYS = ("limit", "algorithm", "burst", "shadow", "on_error")
DOCUMENT_KEYS = ("identity", "trust_forwarded_for", "ipv6_prefix", "legacy_headers", "partition_key", "max_cost",
                 "rules")
KONG_PERIODS = {"second": "second", "minute": "minute", "hour": "hour", "day": "day",
                "month": "30 days", "year": "365 days"}
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")


class RuleRef(NamedTuple):
    name: str
    definition: dict      # limit/algorithm/... ; empty when the operation only refers to the rule
    where: str            # e.g. "paths./orders.post.x-tollgate"


class OperationLimits(NamedTuple):
    rules: tuple[RuleRef, ...]
    cost: int | None


def rule_name(op: Operation, suffix: str = "") -> str:
    """A rule name for an operation: its operationId, else method and path (1-64 of A-Z a-z 0-9 _ - .)."""
    base = op.node.get("operationId") or f"{op.method.lower()}-{op.template.strip('/')}"
    name = _NAME_CHARS.sub("-", str(base)).strip("-") or op.method.lower()
    return (name[: 64 - len(suffix)] + suffix) if suffix else name[:64]


def where_of(op: Operation, level: str, ext: str) -> str:
    if level == "document":
        return ext
    if level == "path":
        return f"paths.{op.template}.{ext}"
    return f"paths.{op.template}.{op.method.lower()}.{ext}"


def tollgate_limits(op: Operation, value: Any, where: str) -> OperationLimits:
    items = value if isinstance(value, list) else [value]
    refs: list[RuleRef] = []
    cost = None
    for i, item in enumerate(items):
        at = f"{where}[{i}]" if isinstance(value, list) else where
        if not isinstance(item, dict):
            raise SpecError(f"{at}: expected a mapping like {{rule, limit, cost}}, got {type(item).__name__}")
        unknown = sorted(set(item) - set(OPERATION_KEYS))
        if unknown:
            raise SpecError(f"{at}.{unknown[0]}: unknown key (known: {', '.join(OPERATION_KEYS)})")
        if not item:
            raise SpecError(f"{at}: empty: give a rule, a limit or a cost")
        if "cost" in item:
            if cost is not None and cost != item["cost"]:
                raise SpecError(f"{at}.cost: the operation already costs {cost}")
            cost = item["cost"]
        definition = {k: item[k] for k in DEFINITION_KEYS if k in item}
        if "rule" in item or definition:
            if definition and "limit" not in definition:
                raise SpecError(f"{at}: {', '.join(definition)} without a limit: say the rule's limit here, "
                                "or only name a rule defined elsewhere")
            name = item.get("rule", rule_name(op))
            if not isinstance(name, str):
                raise SpecError(f"{at}.rule: expected a rule name (text), got {name!r}")
            refs.append(RuleRef(name, definition, at))
    return OperationLimits(tuple(refs), cost)


def kong_limits(op: Operation, value: Any, level: str, where: str, warnings: list[str]) -> OperationLimits:
    if not isinstance(value, dict):
        raise SpecError(f"{where}: expected the plugin's mapping {{enabled, config}}, got {type(value).__name__}")
    if value.get("enabled", True) is False:
        return OperationLimits((), None)
    config = value.get("config") or {}
    if not isinstance(config, dict):
        raise SpecError(f"{where}.config: expected a mapping, got {type(config).__name__}")
    periods = [(p, config[p]) for p in KONG_PERIODS if config.get(p) is not None]
    if not periods:
        raise SpecError(f"{where}.config: no limit (set one of {', '.join(KONG_PERIODS)})")
    refs = []
    for period, count in periods:
        if isinstance(count, float) and count.is_integer():
            count = int(count)
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise SpecError(f"{where}.config.{period}: expected a positive whole number, got {count!r}")
        name = f"kong-{period}" if level == "document" else rule_name(op, f"-{period}")
        definition = {"limit": f"{count} per {KONG_PERIODS[period]}" if period in ("month", "year")
                      else f"{count}/{period}", "algorithm": "fixed_window"}
        if config.get("fault_tolerant") is False:
            definition["on_error"] = "closed"
        refs.append(RuleRef(name, definition, f"{where}.config.{period}"))
        if period in ("month", "year"):
            note = (f"{where}.config.{period}: Kong counts calendar {period}s; Tollgate counts "
                    f"{KONG_PERIODS[period]} windows")
            if note not in warnings:
                warnings.append(note)
    return OperationLimits(tuple(refs), None)


def kong_identity(config: dict, where: str, warnings: list[str]) -> list[str] | None:
    """The identity sources a document-level Kong plugin implies, or None (keep Tollgate's default)."""
    limit_by = config.get("limit_by", "consumer")
    if limit_by == "ip":
        return ["ip"]
    if limit_by == "header":
        header = config.get("header_name")
        if not isinstance(header, str) or not header:
            raise SpecError(f"{where}.config.header_name: limit_by = header needs a header_name")
        return [f"header:{header.lower()}"]
    warnings.append(f"{where}.config.limit_by: Kong limited by {limit_by}; Tollgate identifies clients by "
                    "API key, bearer token or IP (set `identity`, or pass --identity)")
    return None


def document_settings(raw: dict) -> dict:
    """The document-level x-tollgate: Tollgate's top-level settings and global rules."""
    value = raw.get(TOLLGATE_EXT, {})
    if not isinstance(value, dict):
        raise SpecError(f"{TOLLGATE_EXT}: at the document level, expected a mapping of Tollgate settings")
    unknown = sorted(set(value) - set(DOCUMENT_KEYS))
    if unknown:
        raise SpecError(f"{TOLLGATE_EXT}.{unknown[0]}: unknown key at the document level "
                        f"(known: {', '.join(DOCUMENT_KEYS)}; rule, limit and cost go on operations)")
    return dict(value)
