"""Denials an isolate answered itself (worker/deny_cache.py), reported to the bucket.

Why a report at all: a locally denied request still counts in the client's usage and in
the metrics. The Worker appends the report to its next decide payload for that client
after a newline (JSON text never holds one), or sends it alone (`ClientBucket.count_denied`);
the bucket adds the counts to each rule's `denied` in memory, like its own denials.
"""
from __future__ import annotations

import json


def encode_report(counts: dict[str, int]) -> str:
    """`{"denied": [[rule, n], ...]}`, compact."""
    return json.dumps({"denied": sorted(counts.items())}, separators=(",", ":"))


def decode_report(text: str) -> dict[str, int]:
    """A report's positive counts; anything malformed is an empty report (counting is best
    effort and must never fail a decision)."""
    if not text:
        return {}
    try:
        items = json.loads(text)["denied"]
        return {rule: int(n) for rule, n in items if isinstance(rule, str) and rule and int(n) > 0}
    except (ValueError, KeyError, TypeError):
        return {}


def split_payload(payload: str) -> tuple[str, dict[str, int]]:
    """A decide payload and the report riding after its newline (none: empty counts)."""
    if "\n" not in payload:
        return payload, {}
    text, _, report = payload.partition("\n")
    return text, decode_report(report)
