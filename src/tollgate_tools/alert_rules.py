"""A time-compressed copy of a Prometheus rule file, generated from the shipped one.

Why: the shipped alerts wait `for: 10m` over `rate(...[15m])` windows, so a
test that watches a real Prometheus fire them would take most of an hour.
Dividing every duration in the file (`for:`, range selectors, subquery steps,
`offset`, the group's evaluation `interval`) by one factor keeps each rule's
logic and thresholds exactly as shipped: a 429 spike that would fire after
ten minutes in production fires after ten seconds at factor 60. Thresholds
are not touched (a rate is still per second, `> 900` seconds of lag is still
900 seconds), so rules that compare a value against a duration (flush lag,
time since the last flush) keep their production thresholds.

    python -m src.tollgate_tools.alert_rules alerts/tollgate.rules.yml --factor 60 --interval 1s
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import yaml

UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000,
            "y": 31_536_000_000}
_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_DURATION = r"(?:\d+(?:ms|s|m|h|d|w|y))+"
_RANGE = re.compile(rf"\[({_DURATION})(?::({_DURATION})?)?\]")
_OFFSET = re.compile(rf"\boffset\s+(-?)({_DURATION})")


def duration_ms(text: str) -> int:
    """A Prometheus duration ("1h30m", "15m", "500ms") in milliseconds; ValueError otherwise."""
    text = text.strip()
    parts = _PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return sum(int(n) * UNITS_MS[u] for n, u in parts)


def format_ms(ms: int) -> str:
    """The shortest exact Prometheus duration for `ms` (at least 1ms)."""
    ms = max(1, ms)
    for unit in ("d", "h", "m", "s"):
        if ms % UNITS_MS[unit] == 0:
            return f"{ms // UNITS_MS[unit]}{unit}"
    return f"{ms}ms"


def scale(text: str, factor: int) -> str:
    return format_ms(duration_ms(text) // factor)


def compress_expr(expr: str, factor: int) -> str:
    """`expr` with every range, subquery step and offset divided by `factor`."""
    def range_(m: re.Match) -> str:
        step = "" if m.group(2) is None else ":" + scale(m.group(2), factor)
        if m.group(0).endswith(":]"):
            step = ":"
        return f"[{scale(m.group(1), factor)}{step}]"

    def offset(m: re.Match) -> str:
        return f"offset {m.group(1)}{scale(m.group(2), factor)}"

    return _OFFSET.sub(offset, _RANGE.sub(range_, expr))


def compress_rules(doc: dict[str, Any], factor: int, interval: str) -> dict[str, Any]:
    """A new rule-file document: every duration divided by `factor`, each group evaluated every `interval`."""
    if factor < 1:
        raise ValueError("factor must be a whole number >= 1")
    duration_ms(interval)
    groups = []
    for group in doc.get("groups") or []:
        rules = []
        for rule in group.get("rules") or []:
            rule = dict(rule)
            rule["expr"] = compress_expr(str(rule["expr"]), factor)
            if "for" in rule:
                rule["for"] = scale(str(rule["for"]), factor)
            if "keep_firing_for" in rule:
                rule["keep_firing_for"] = scale(str(rule["keep_firing_for"]), factor)
            rules.append(rule)
        groups.append({**group, "interval": interval, "rules": rules})
    return {**doc, "groups": groups}


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (PromQL, descriptions) as `|` blocks, readable like the shipped file."""


_BlockDumper.add_representer(
    str, lambda dumper, value: dumper.represent_scalar("tag:yaml.org,2002:str", value,
                                                       style="|" if "\n" in value else None))


def compressed_copy(source: Path, factor: int, interval: str) -> str:
    """The YAML text of `source` compressed (see the module docstring), marked as generated."""
    doc = compress_rules(yaml.safe_load(source.read_text()), factor, interval)
    header = (f"# GENERATED from {source.name} by src/tollgate_tools/alert_rules.py "
              f"(durations / {factor}, evaluated every {interval}): do not edit, regenerate.\n")
    return header + yaml.dump(doc, Dumper=_BlockDumper, sort_keys=False, width=120)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("rules", type=Path, help="the shipped rule file (alerts/tollgate.rules.yml)")
    p.add_argument("--factor", type=int, default=60, help="divide every duration by this (default 60: minutes become seconds)")
    p.add_argument("--interval", default="1s", help="evaluation interval of every group in the copy (default 1s)")
    p.add_argument("--output", type=Path, help="write here instead of standard output")
    args = p.parse_args(argv)
    try:
        text = compressed_copy(args.rules, args.factor, args.interval)
    except (OSError, ValueError, KeyError, yaml.YAMLError) as exc:
        print(f"alert_rules: {args.rules}: {exc}", file=sys.stderr)
        return 2
    if args.output:
        args.output.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
