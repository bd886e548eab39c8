"""Rates as users write them: "100/minute", "10/second", "5000/day", "20 per 10 seconds"."""
from __future__ import annotations

import json
import re
from typing import NamedTuple

UNIT_MS = {
    "ms": 1, "millisecond": 1, "milliseconds": 1,
    "s": 1_000, "sec": 1_000, "second": 1_000, "seconds": 1_000,
    "m": 60_000, "min": 60_000, "minute": 60_000, "minutes": 60_000,
    "h": 3_600_000, "hour": 3_600_000, "hours": 3_600_000,
    "d": 86_400_000, "day": 86_400_000, "days": 86_400_000,
}
EXPECTED = 'expected N/second|minute|hour|day or "N per K seconds"'
_RATE = re.compile(r"^\s*(\d+)\s*(?:/|\s+per\s+)\s*(\d+)?\s*([a-z]+)\s*$", re.IGNORECASE)


class Rate(NamedTuple):
    count: int
    period_ms: int

    def __str__(self) -> str:
        for unit in ("day", "hour", "minute", "second"):
            if self.period_ms == UNIT_MS[unit]:
                return f"{self.count}/{unit}"
        if self.period_ms % 1000 == 0:
            return f"{self.count} per {self.period_ms // 1000} seconds"
        return f"{self.count} per {self.period_ms} ms"


def parse_rate(text: str) -> Rate:
    """Parse a rate; ValueError says what was wrong and what is accepted."""
    if not isinstance(text, str):
        raise ValueError(f"{_quote(text)} is not a rate ({EXPECTED})")
    m = _RATE.match(text)
    unit_ms = UNIT_MS.get(m.group(3).lower()) if m else None
    if m is None or unit_ms is None:
        raise ValueError(f"{_quote(text)} is not a rate ({EXPECTED}){_did_you_mean(text, m)}")
    count = int(m.group(1))
    multiplier = int(m.group(2)) if m.group(2) else 1
    if count < 1:
        raise ValueError(f"{_quote(text)}: the count must be at least 1")
    if multiplier < 1:
        raise ValueError(f"{_quote(text)}: the period must be at least 1 {m.group(3)}")
    return Rate(count, multiplier * unit_ms)


def _did_you_mean(text: str, m: "re.Match[str] | None") -> str:
    """A close spelling of the unit ("100/minnute" -> "100/minute"), or nothing."""
    if m is None:
        return ""
    import difflib  # only on a config error: importing it costs Worker start-up time on Pyodide

    unit = m.group(3)
    close = difflib.get_close_matches(unit.lower(), [u for u in UNIT_MS if len(u) >= 3], n=1, cutoff=0.6)
    if not close:
        return ""
    start, end = m.span(3)
    return f' (did you mean "{(text[:start] + close[0] + text[end:]).strip()}"?)'


def _quote(value: object) -> str:
    return json.dumps(value) if isinstance(value, str) else repr(value)
