"""Settings of the edge's fast paths (issue 13), parsed for config.py.

`deny_cache_seconds`: how long an isolate may answer a denied client itself at most
(worker/deny_cache.py). The cap is what an admin reset, a restore or a raised override
can take to reach every isolate, so it is bounded; the cache itself is always on.
"""
from __future__ import annotations

from typing import Any, Mapping

DEFAULT_DENY_CACHE_S = 60
MAX_DENY_CACHE_S = 3600


def parse_deny_cache(raw: Mapping, path: str, errors: list[str]) -> int:
    """`deny_cache_seconds` in milliseconds (default 60 s), or an error naming the field."""
    value: Any = raw.get("deny_cache_seconds", DEFAULT_DENY_CACHE_S)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DENY_CACHE_S:
        errors.append(f"{path}.deny_cache_seconds: expected whole seconds 1..{MAX_DENY_CACHE_S} (how long an "
                      f"isolate may answer a denied client itself; default {DEFAULT_DENY_CACHE_S}), got {value!r}")
        return DEFAULT_DENY_CACHE_S * 1000
    return value * 1000
