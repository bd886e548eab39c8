"""`previous_names`: a renamed rule keeps the state its clients built under the old name.

Why: a rule's state in each bucket is stored under the rule's name, so renaming a
rule would start every client afresh (a fresh burst, a fresh daily quota). A rule
that lists its former names is decided, in each bucket, on the state kept under
them (durable_objects/renames.py). Validation here, called by config.py.
"""
from __future__ import annotations

import re
from typing import Any, Sequence

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_PREVIOUS_NAMES = 8


def parse_previous_names(value: Any, where: str, errors: list[str]) -> tuple[str, ...]:
    """`previous_names = ["old-name", ...]`: rule names, at most MAX_PREVIOUS_NAMES."""
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)) or not value or len(value) > MAX_PREVIOUS_NAMES:
        errors.append(f"{where}: expected a list of 1 to {MAX_PREVIOUS_NAMES} former rule names, got {value!r}")
        return ()
    bad = [v for v in value if not isinstance(v, str) or not _NAME.match(v)]
    if bad:
        errors.append(f"{where}: {bad[0]!r} is not a rule name (1-64 letters, digits, '_', '-' or '.')")
        return ()
    return tuple(dict.fromkeys(value))


def check_renames(rules: Sequence[Any], where: str, errors: list[str]) -> None:
    """A former name must not be a current rule, nor the former name of two rules."""
    current = {r.name for r in rules}
    claimed: dict[str, str] = {}
    for rule in rules:
        for old in rule.previous_names:
            if old in current:
                errors.append(f'{where}: rule "{rule.name}" lists "{old}" in previous_names, but "{old}" is '
                              "a rule of this config: a former name must be gone")
            elif old in claimed:
                errors.append(f'{where}: "{old}" is in previous_names of both "{claimed[old]}" and "{rule.name}"')
            claimed.setdefault(old, rule.name)
