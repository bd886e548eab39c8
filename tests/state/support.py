"""What the bucket tests share: rules, a virtual clock, and RPC-shaped calls."""
from __future__ import annotations

import asyncio

from src.tollgate.algorithms import Limit
from src.tollgate.rules import Match, Rule
from src.tollgate.usage import ACCOUNTING_PERIOD_MS
from src.tollgate.wire import decode_decision, encode_decide

T0 = 1_800_000_000_000 - 1_800_000_000_000 % ACCOUNTING_PERIOD_MS + 1000
PERIOD0 = T0 - T0 % ACCOUNTING_PERIOD_MS
ALL = Match(None, None)
BURST = Rule("burst", Limit("gcra", 5, 1000, 5), ALL)
MINUTE = Rule("minute", Limit("fixed_window", 3, 60_000, 3), ALL)
SHADOW = Rule("shadow", Limit("fixed_window", 1, 60_000, 1), ALL, shadow=True)
DAILY = Rule("daily", Limit("fixed_window", 12, 86_400_000, 12), ALL)


def run(coro):
    return asyncio.run(coro)


class Clock:
    """A clock that stands still until told, counting its reads."""

    def __init__(self, t: int = T0) -> None:
        self.t, self.reads = t, 0

    def __call__(self) -> int:
        self.reads += 1
        return self.t


def decide(bucket, rules, cost=1):
    """One decision through the RPC's JSON, as the Worker sends it."""
    return decode_decision(run(bucket.decide(encode_decide(rules, cost))))


def rows(bucket):
    """rule_state as stored, per rule, once the bucket checkpointed its journal
    (durable_objects/journal.py), as every reader of the table does."""
    bucket.store.checkpoint()
    return {r["rule"]: r for r in bucket.sql.rows("SELECT * FROM rule_state")}
