"""A ClientBucket's concurrency slots (issue 14): one row per request in flight.

Why rows of their own: a slot is not a counter that time refills, it is a request
that will end (release) or be lost (its isolate died: the slot expires). The rule
store's three ints per rule cannot say which requests hold what, so each admitted
request that took a slot writes one row here, `(slot id, {rule: hold_ms}, renewed_ms)`,
whatever the number of concurrency rules it met; its release deletes the row and a
renewal rewrites it. The schema is the rule store's migration 4
(durable_objects/rule_store.py), so one owner numbers the bucket's schema.

Like the rule rows, the slots are kept in memory after the first read: this instance
is their only writer. The pure math (live slots per rule, expiry) is
src/tollgate/concurrency.py; the decision reads its summary and takes the slot in the
same synchronous stretch as the rate rules' write, so the two are one atomic step.
"""
from __future__ import annotations

import json
import secrets
from typing import Sequence

from durable_objects.sql import Sql
from src.tollgate import concurrency
from src.tollgate.algorithms import CONCURRENCY, State
from src.tollgate.decision import Decision
from src.tollgate.rules import Rule

SCHEMA = """CREATE TABLE IF NOT EXISTS slots (
  slot TEXT PRIMARY KEY,           -- 128 random bits, hex: half of the release token
  holds TEXT NOT NULL,             -- {"rule": hold_ms, ...}: the concurrency rules it counts in
  renewed_ms INTEGER NOT NULL      -- taken or last renewed; rule r's slot expires at renewed_ms + hold_ms[r]
) WITHOUT ROWID"""
_ALL = "SELECT slot, holds, renewed_ms FROM slots"
_INSERT = "INSERT INTO slots (slot, holds, renewed_ms) VALUES (?, ?, ?)"
_DELETE = "DELETE FROM slots WHERE slot = ?"
_RENEW = "UPDATE slots SET renewed_ms = ? WHERE slot = ?"
_CLEAR = "DELETE FROM slots"


def asks_slots(rules: Sequence[Rule]) -> bool:
    """Whether a decision over `rules` involves a concurrency rule (most do not)."""
    for rule in rules:
        if rule.limit.algorithm == CONCURRENCY:
            return True
    return False


class SlotStore:
    """The slots table of one bucket, with its memory copy."""

    def __init__(self, sql: Sql) -> None:
        self.sql = sql
        self._live: dict[str, tuple[int, dict[str, int]]] | None = None

    def _slots(self) -> dict[str, tuple[int, dict[str, int]]]:
        if self._live is None:
            self._live = {row["slot"]: (int(row["renewed_ms"]), json.loads(row["holds"]))
                          for row in self.sql.rows(_ALL)}
        return self._live

    def summaries(self, rules: Sequence[Rule], now_ms: int) -> dict[str, State]:
        """Each concurrency rule's live slots at `now_ms`, as `decide()` reads them."""
        return concurrency.summaries(self._slots(), rules, now_ms)

    def take(self, decision: Decision, rules: Sequence[Rule], now_ms: int) -> str | None:
        """The slot an admitted decision takes (one row), or None when it counts in no
        concurrency rule. Slots that expired are deleted first: they were lost."""
        if not decision.allowed:
            return None
        holds = concurrency.holds_taken(rules, decision.results)
        if not holds:
            return None
        live = self._slots()
        for lost in concurrency.expired(live, now_ms):
            self.sql.run(_DELETE, lost)
            del live[lost]
        slot = secrets.token_hex(16)
        self.sql.run(_INSERT, slot, json.dumps(holds, separators=(",", ":")), now_ms)
        live[slot] = (now_ms, holds)
        return slot

    def release(self, slot: str) -> bool:
        """Free `slot`; False when it is not held (released already, expired and pruned, never
        issued): a no-op."""
        live = self._slots()
        if slot not in live:
            return False
        self.sql.run(_DELETE, slot)
        del live[slot]
        return True

    def renew(self, slot: str, now_ms: int) -> bool:
        """Push `slot`'s expiry to now + hold. False when it is not held, or already expired:
        an expired slot was free for others, so renewing it would count it twice."""
        live = self._slots()
        held = live.get(slot)
        if held is None or not any(held[0] + hold > now_ms for hold in held[1].values()):
            return False
        self.sql.run(_RENEW, now_ms, slot)
        live[slot] = (now_ms, held[1])
        return True

    def clear(self) -> int:
        """Free every slot (admin reset); returns how many were held."""
        count = len(self._slots())
        if count:
            self.sql.run(_CLEAR)
        self._live = {}
        return count

    def held(self, now_ms: int) -> int:
        """Slots still counting at `now_ms` (a bucket holding any must not delete itself)."""
        return sum(1 for renewed, holds in self._slots().values()
                   if any(renewed + hold > now_ms for hold in holds.values()))

    def last_expiry(self) -> int:
        """When the last slot held stops counting (0: none): the bucket keeps its storage until
        then (durable_objects/lifecycle.py `hold_until`), or a long stream's slot would vanish."""
        return max((renewed + max(holds.values()) for renewed, holds in self._slots().values() if holds),
                   default=0)
