"""What one SnapshotOutbox shard knows about the last hours, for the dashboard page.

Why from `seen`: each shard keeps the last counts it accepted per (client, rule,
hour) for two days (durable_objects/outbox.py, SEEN_KEEP_MS), whatever the
store is. So the last 24 hours per rule, and the clients most often denied,
can be read here with the HTTP store (write-only) as with D1, seconds behind
the buckets rather than a cron interval. A client lives in one shard
(`shard_for`), so each shard's top clients merged and re-sorted are the top
clients overall.
"""
from __future__ import annotations

import json
from typing import Any

from durable_objects import latency_hours

_COUNTS = ("allowed", "admitted", "denied", "shadow_denied")
MAX_TOP = 50


def _args(text: str) -> tuple[int, int]:
    try:
        obj = json.loads(text) if text else None
    except (TypeError, ValueError):
        obj = None
    since, top = (obj.get("since_ms"), obj.get("top", 10)) if isinstance(obj, dict) else (None, None)
    if not isinstance(since, int) or isinstance(since, bool) or since < 0:
        raise ValueError('recent: expected {"since_ms": epoch ms, "top": N}')
    if not isinstance(top, int) or isinstance(top, bool) or not 0 <= top <= MAX_TOP:
        raise ValueError(f"recent.top: expected 0..{MAX_TOP}, got {top!r}")
    return since, top


def recent(sql: Any, args: str, latency_slots: int) -> str:
    """`{"since_ms", "top"}` -> `{"rules": {rule: [allowed, admitted, denied, shadow_denied]},
    "denied": [[client, denied, {rule: denied}], ...], "latency": {kind: {rules: {"<hour>": [slots]}}}}`
    over the hours starting at or after since_ms."""
    since, top = _args(args)
    sums = ", ".join(f"SUM({c}) AS {c}" for c in _COUNTS)
    rules = {r["rule"]: [int(r[c] or 0) for c in _COUNTS]
             for r in sql.rows(f"SELECT rule, {sums} FROM seen WHERE period_start >= ? GROUP BY rule", since)}
    clients = sql.rows("SELECT client, SUM(denied) AS denied FROM seen WHERE period_start >= ? GROUP BY client "
                       "HAVING SUM(denied) > 0 ORDER BY SUM(denied) DESC, client LIMIT ?", since, top) if top else []
    by_rule: dict[str, dict[str, int]] = {c["client"]: {} for c in clients}
    if clients:
        marks = ", ".join("?" for _ in clients)
        for r in sql.rows(f"SELECT client, rule, SUM(denied) AS denied FROM seen WHERE period_start >= ? "
                          f"AND client IN ({marks}) GROUP BY client, rule HAVING SUM(denied) > 0",
                          since, *by_rule):
            by_rule[r["client"]][r["rule"]] = int(r["denied"])
    return json.dumps({"rules": rules, "denied": [[c["client"], int(c["denied"]), by_rule[c["client"]]]
                                                  for c in clients],
                       "latency": latency_hours.since(sql, since, latency_slots)}, separators=(",", ":"))
