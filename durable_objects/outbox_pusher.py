"""A bucket's changes on their way to its SnapshotOutbox shard: pending, alarm, confirm.

Why an alarm and a confirmation: a change must leave the object even if the
bucket is never touched again, survive a crash or an outbox outage, and be
marked sent only for the versions the shard accepted, so a decision that lands
while the snapshot is in flight is sent by the next alarm.
"""
from __future__ import annotations

import logging
from typing import Any

from durable_objects.rule_store import RuleStore
from durable_objects.sql import get_alarm, set_alarm
from src.tollgate import clock
from src.tollgate.snapshots import UsageRecord, encode_rows, shard_for, shard_name
from src.tollgate.topology import outbox_shards, snapshot_delay_ms

log = logging.getLogger("tollgate.bucket")

MAX_RETRY_DELAY_MS = 300_000


class OutboxPusher:
    def __init__(self, store: RuleStore, storage: Any, env: Any, client: str) -> None:
        self.store, self.storage, self.env, self.client = store, storage, env, client
        self.alarm_pending: bool | None = None  # None: unknown, ask storage once
        self.retries = 0
        self.lifecycle: Any = None  # durable_objects/lifecycle.py: tells a cleanup alarm from a retry

    def pending(self) -> list[UsageRecord]:
        """Every change the outbox has not confirmed: dirty rows and closed periods."""
        return self.store.unsent(self.client)

    async def ensure_alarm(self, now: int) -> None:
        """After a change: an alarm SNAPSHOT_DELAY_MS from the first change, unless one is set."""
        if self.alarm_pending:
            return
        current = await get_alarm(self.storage)
        # A push or retry alarm is never more than MAX_RETRY_DELAY_MS away; anything later (or
        # the cleanup alarm, lifecycle.py) would hold the change back: replace it with a push.
        if current is None or current > now + MAX_RETRY_DELAY_MS or (
                self.lifecycle is not None and self.lifecycle.is_cleanup_alarm(current)):
            await set_alarm(self.storage, now + snapshot_delay_ms(self.env))
        self.alarm_pending = True

    async def push(self) -> None:
        """The alarm: send what is pending to the client's shard; on failure keep it and retry later."""
        self.alarm_pending = False
        records = self.pending()
        if not records:
            return
        outbox = self.env.OUTBOX.getByName(shard_name(shard_for(self.client, outbox_shards(self.env))))
        try:
            await outbox.put(encode_rows(records))
        except Exception as exc:  # outbox unreachable: keep everything, try again later
            await self._retry_later(exc)
            return
        self.retries = 0
        self.store.mark_sent(records)
        if self.store.has_unsent():
            await self.ensure_alarm(clock.now_ms())  # changed while we were sending

    async def _retry_later(self, exc: Exception) -> None:
        self.retries += 1
        delay = snapshot_delay_ms(self.env)
        wait = min(MAX_RETRY_DELAY_MS, max(delay, 1000) * 2 ** min(self.retries - 1, 10))
        log.warning("snapshot of %s not delivered (%s); retry in %d ms", self.client, exc, wait)
        await set_alarm(self.storage, clock.now_ms() + wait)
        self.alarm_pending = True
