"""Rules: a named limit, which requests it applies to, and how it behaves."""
from __future__ import annotations

import fnmatch
import re
from typing import NamedTuple

from src.tollgate.algorithms import Limit


class Match:
    """Which requests a rule counts: methods and path globs (`*` spans segments).

    None means "all". Patterns are compiled once, at config load, into one
    regular expression, so matching costs one `re.match` per rule.
    """

    __slots__ = ("methods", "paths", "_regex")

    def __init__(self, methods: frozenset[str] | None = None, paths: tuple[str, ...] | None = None) -> None:
        self.methods = frozenset(m.upper() for m in methods) if methods is not None else None
        self.paths = tuple(paths) if paths is not None else None
        self._regex = (re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in self.paths))
                       if self.paths else None)

    def matches(self, method: str, path: str) -> bool:
        if self.methods is not None and method not in self.methods:
            return False
        return self._regex is None or self._regex.match(path) is not None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Match) and (self.methods, self.paths) == (other.methods, other.paths)

    def __hash__(self) -> int:
        return hash((self.methods, self.paths))

    def __repr__(self) -> str:
        return f"Match(methods={self.methods!r}, paths={self.paths!r})"


MATCH_ALL = Match()


class Rule(NamedTuple):
    name: str
    limit: Limit
    match: Match = MATCH_ALL
    shadow: bool = False      # report-only: evaluated and reported, never denies
    on_error: str = "open"    # what the gateway does when the bucket cannot be reached
    previous_names: tuple[str, ...] = ()   # renamed: the bucket keeps the state kept under these
    lease: float = 0.0        # mode = "lease": its max_overshoot, a fraction of the limit; 0.0: strict

    def matches(self, method: str, path: str) -> bool:
        return self.match.matches(method, path)
