"""Rotating IDENTITY_SECRET: a client's bucket changes name, its limiter state moves with it.

Why: every bucket is named by HMAC(IDENTITY_SECRET, identity), so a new secret
names every client anew; a fresh bucket would hand out a fresh burst and a fresh
daily quota. While IDENTITY_SECRET_PREVIOUS is set, the Worker passes the
client's old name with each decision. The first decision of an empty bucket
(the cold path, once per instance) asks the old bucket to `hand_over`: the old
bucket returns its limiter states and the limits they were written with, forgets
them, and from then on forwards every decision it is still asked for (a Worker
version with the old secret, during a gradual deploy) to the new bucket, so one
object decides for the client. Usage is never moved: what the old bucket counted
stays under the old name in the store (scripts/reconcile finds both names), what
the new one counts is under the new name, each request once.

The old bucket keeps its forwarding note (`meta.moved_to`) for FORWARD_KEEP_MS,
then cleans up like any idle bucket (lifecycle.py).
"""
from __future__ import annotations

import asyncio
import json
from typing import Any

from durable_objects.rule_store import RuleStore
from durable_objects.sql import Sql
from src.tollgate import clock, lifecycle
from src.tollgate.snapshots import UsageRecord
from src.tollgate.usage import period_start

FORWARD_KEEP_MS = 2 * 86_400_000
_META = "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value"


class Rotation:
    def __init__(self, sql: Sql, store: RuleStore, env: Any, client: str, limits: dict) -> None:
        self.sql, self.store, self.env, self.client, self.limits = sql, store, env, client, limits
        meta = {r["key"]: r["value"] for r in sql.rows(
            "SELECT key, value FROM meta WHERE key IN ('moved_to', 'moved_at')")}
        self.moved_to: str | None = meta.get("moved_to")
        self.moved_at = int(meta.get("moved_at") or 0)
        self._task: asyncio.Future | None = None
        self.taken_from: str | None = None

    # ------------------------------------------------------------ the new bucket
    async def take_over(self, previous: str | None) -> None:
        """Once per instance, shared by concurrent first decisions: an empty bucket takes the
        limiter states of the client's bucket under the previous secret."""
        if self._task is None:          # a running take-over holds every first decision, forwarded ones too
            if not previous or previous == self.client or self.taken_from is not None or not self.store.is_empty():
                return
            self._task = asyncio.ensure_future(self._take(previous))
        await asyncio.shield(self._task)

    async def _take(self, previous: str) -> None:
        try:
            answer = json.loads(await self.env.BUCKETS.getByName(previous).hand_over(self.client))
        except Exception:
            self._task = None           # the old bucket did not answer: this decision fails (on_error), the next asks again
            raise
        now = clock.now_ms()
        for rule, state in answer.get("states", {}).items():
            if rule in self.store.all_rows():
                continue                # decided meanwhile: this bucket's state is newer
            self.store.put_stored(UsageRecord(self.client, rule, period_start(now), 0, 0, 0, 0, 0))
            self.store.set_state(rule, tuple(int(v) for v in state))
        if lifecycle.remember_encoded(self.limits, answer.get("limits")):
            self.sql.run(_META, "limits", json.dumps(lifecycle.encode_limits(self.limits), separators=(",", ":")))
        self.taken_from = previous

    # ------------------------------------------------------------ the old bucket
    def hand_over(self, new_client: str) -> str:
        """Give the limiter states to `new_client`, forget them here, forward from now on."""
        if self.moved_to is not None:
            return json.dumps({"states": {}, "moved_to": self.moved_to})
        states = {name: list(row.state) for name, row in self.store.all_rows().items() if row.state is not None}
        self.store.clear_states()
        now = clock.now_ms()
        self.sql.run(_META, "moved_to", new_client)
        self.sql.run(_META, "moved_at", str(now))
        self.moved_to, self.moved_at = new_client, now
        return json.dumps({"states": states, "limits": lifecycle.encode_limits(self.limits)})

    async def forward(self, payload: str) -> str:
        """A decision for a client whose bucket moved: decided there, counted there."""
        return await self.env.BUCKETS.getByName(self.moved_to).decide(payload)

    def keep_until(self) -> int:
        """A forwarding bucket stays at least this long (lifecycle.py)."""
        return self.moved_at + FORWARD_KEEP_MS if self.moved_to is not None else 0
