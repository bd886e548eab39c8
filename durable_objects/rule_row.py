"""One rule_state row in Python (RuleRow) and the decimal-text form of limiter state.

Apart from durable_objects/rule_store.py, which decides when rows reach storage, so that
module stays within its size; rule_store re-exports RuleRow.
"""
from __future__ import annotations

from src.tollgate.algorithms import State
from src.tollgate.snapshots import UsageRecord


def _text(state: State | None) -> tuple:
    return (None, None, None) if state is None else (str(state[0]), str(state[1]), str(state[2]))


class RuleRow:
    """One rule_state row in Python, mutated by a decision and written back once."""

    __slots__ = ("rule", "state", "period_start", "allowed", "admitted", "denied", "shadow_denied",
                 "version", "sent_version")

    def __init__(self, rule: str, period: int) -> None:
        self.rule, self.state, self.period_start = rule, None, period
        self.allowed = self.admitted = self.denied = self.shadow_denied = 0
        self.version = self.sent_version = 0

    @classmethod
    def from_db(cls, d: dict) -> "RuleRow":
        row = cls(d["rule"], d["period_start"])
        row.state = None if d["s0"] is None else (int(d["s0"]), int(d["s1"]), int(d["s2"]))
        for f in ("allowed", "admitted", "denied", "shadow_denied", "version", "sent_version"):
            setattr(row, f, d[f])
        return row

    def usage(self, client: str) -> UsageRecord:
        return UsageRecord(client, self.rule, self.period_start, self.allowed, self.admitted, self.denied,
                           self.shadow_denied, self.version)
