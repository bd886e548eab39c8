"""What the admin API asks of one bucket: inspect its state (GET) and reset it (DELETE).

Why apart from the decision: both read or rewrite every row, never on the
request path, and their JSON is a contract with worker/routes/admin.py.
"""
from __future__ import annotations

import json
from typing import Any

from durable_objects.rule_store import RuleStore
from src.tollgate.decision import decide
from src.tollgate.wire import decode_decide


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


def inspect(store: RuleStore, client: str, payload: str | None, now: int, cleanup_at: int | None = None,
            slots: Any = None) -> str:
    """State and usage per rule; with a decide payload (cost 0) also remaining/reset per rule.
    `cleanup_at`: when the idle bucket deletes itself (lifecycle.py), if scheduled; `slots`: the
    bucket's SlotStore (a concurrency rule's remaining is its free slots)."""
    rows = store.all_rows()
    out: dict[str, Any] = {"client": client, "now_ms": now, "rules": {}}
    if cleanup_at is not None and rows:
        out["cleanup_at_ms"] = cleanup_at
    for name, row in rows.items():
        out["rules"][name] = {
            "state": list(row.state) if row.state is not None else None,
            "period_start_ms": row.period_start, "allowed": row.allowed, "admitted": row.admitted,
            "denied": row.denied, "shadow_denied": row.shadow_denied,
            "version": row.version, "sent_version": row.sent_version,
        }
    _add_remaining(out, rows, payload, now, slots)
    if slots is not None and slots.held(now):
        out["slots_held"] = slots.held(now)
    out["closed"] = store.closed()
    out["unsent"] = len(store.unsent(client))
    return _dumps(out)


def inspect_deleted(client: str, payload: str | None, now: int) -> str:
    """What inspect says of a bucket that deleted its storage (lifecycle.py): a client never seen."""
    out: dict[str, Any] = {"client": client, "now_ms": now, "rules": {}}
    _add_remaining(out, {}, payload, now)
    out.update(closed=[], unsent=0)
    return _dumps(out)


def _add_remaining(out: dict, rows: dict, payload: str | None, now: int, slots: Any = None) -> None:
    if payload:
        rules, _ = decode_decide(payload)
        states = {r.name: rows[r.name].state if r.name in rows else None for r in rules}
        if slots is not None:
            states.update(slots.summaries(rules, now))
        for result in decide(rules, states, 0, now).results:
            entry = out["rules"].setdefault(result.name, {"state": None})
            entry.update(remaining=result.remaining, reset_ms=result.reset_ms)


def reset(store: RuleStore, client: str) -> str:
    """Forget limiter state; usage counters (and their way to the store) are kept.
    Restored usage is not charged either: a reset is a reset."""
    return _dumps({"client": client, "reset_rules": store.clear_states()})
