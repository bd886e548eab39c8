"""An idle ClientBucket deletes itself: the cleanup alarm, the checks, deleteAll.

Why here and not in the decision: the request path only hands over the rules
it decided with (`note`, an identity check when warm); everything else runs in
the alarm, after the outbox push. When (src/tollgate/lifecycle.py) every rule
is full again, every accounting hour has closed and every change is
confirmed, the bucket asks its outbox shard whether it still holds this
client's usage (held: not yet in the store, ask again later) and then deletes
its storage and alarm. A later request builds a fresh bucket; it decides as
this one would have.

What is kept in `meta`: the limits each rule was decided with (`limits`, so the
alarm can judge window states without the config) and the time of the
cleanup alarm (`cleanup_at`, so a new change replaces that alarm with a
push; a retry alarm is left alone).
"""
from __future__ import annotations

import json
import logging
from typing import Any, Callable

from durable_objects.rule_store import RuleStore
from durable_objects.sql import Sql, get_alarm, set_alarm
from src.tollgate import clock, lifecycle
from src.tollgate.algorithms import Limit
from src.tollgate.snapshots import shard_for, shard_name
from src.tollgate.topology import outbox_shards

log = logging.getLogger("tollgate.bucket")

_META = "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value"


class Lifecycle:
    def __init__(self, sql: Sql, store: RuleStore, storage: Any, env: Any, client: str,
                 on_wiped: Callable[[], None]) -> None:
        self.sql, self.store, self.storage, self.env, self.client = sql, store, storage, env, client
        self.on_wiped = on_wiped
        self.enabled = lifecycle.idle_cleanup(env)
        meta = {r["key"]: r["value"] for r in sql.rows(
            "SELECT key, value FROM meta WHERE key IN ('limits', 'cleanup_at')")}
        self.limits: dict[str, list[Limit]] = lifecycle.decode_limits(_json(meta.get("limits")))
        self.cleanup_at: int | None = int(meta["cleanup_at"]) if meta.get("cleanup_at") else None
        self._last_rules: Any = None
        self.hold_until: Callable[[], int] = lambda: 0    # rotation.py: a forwarding bucket stays a while

    # ------------------------------------------------------------ from the request path
    def note(self, rules: Any) -> None:
        """The rules a decision used (a cached tuple: warm decisions stop at the identity check)."""
        if rules is self._last_rules:
            return
        self._last_rules = rules
        if lifecycle.remember(self.limits, rules):
            self.sql.run(_META, "limits", json.dumps(lifecycle.encode_limits(self.limits), separators=(",", ":")))

    def is_cleanup_alarm(self, at_ms: int | None) -> bool:
        """A set alarm that is only the cleanup: a new change may replace it with a push."""
        return at_ms is not None and at_ms == self.cleanup_at

    # ------------------------------------------------------------ from the alarm (and restore)
    def due(self) -> int | None:
        rows = {name: (row.state, row.period_start) for name, row in self.store.all_rows().items()}
        restored = [r["period_start"] for r in self.sql.rows("SELECT period_start FROM restored_usage")]
        due = lifecycle.cleanup_due(rows, self.limits, restored)
        return None if due is None else max(due, self.hold_until())

    async def after_alarm(self, push_rearmed: bool) -> None:
        """After the push: schedule the cleanup, or clean up now if it is due and nothing is held."""
        if not self.enabled or push_rearmed or self.store.has_unsent():
            return
        due = self.due()
        if due is None:
            return
        now = clock.now_ms()
        if due > now:
            await self._arm(due)
            return
        if not self.store.is_empty() and await self._outbox_holds():  # empty: never sent anything
            await self._arm(now + lifecycle.cleanup_recheck_ms(self.env))
            return
        # the outbox call awaited: a decision may have run meanwhile (the input gate was open)
        due = None if self.store.has_unsent() else self.due()
        if due is None:
            return                      # changed: its push alarm calls after_alarm again
        if due > clock.now_ms():
            await self._arm(due)
            return
        await self.wipe()

    async def schedule(self) -> None:
        """After a restore: the rows may already be old enough to go."""
        if self.enabled and not self.store.has_unsent():
            due = self.due()
            if due is not None:
                await self._arm(max(due, clock.now_ms()))

    async def _arm(self, at_ms: int) -> None:
        current = await get_alarm(self.storage)
        if current is not None and not self.is_cleanup_alarm(current) and current <= at_ms:
            return                      # a push or retry comes first: it calls after_alarm again
        self.cleanup_at = at_ms
        self.sql.run(_META, "cleanup_at", str(at_ms))
        await set_alarm(self.storage, at_ms)

    async def _outbox_holds(self) -> bool:
        shard = self.env.OUTBOX.getByName(shard_name(shard_for(self.client, outbox_shards(self.env))))
        try:
            return json.loads(await shard.holds(self.client))["entries"] > 0
        except Exception as exc:  # shard unreachable: keep everything, ask again later
            log.warning("cleanup of %s: outbox not reachable (%s)", self.client, exc)
            return True

    async def wipe(self) -> None:
        """Delete every row and the alarm (deleteAll deletes the alarm too from compatibility
        date 2026-02-24, Cloudflare changelog 2026-02-24; deleteAlarm first covers older dates)."""
        await self.storage.deleteAlarm()
        await self.storage.deleteAll()
        log.info("bucket %s was idle and confirmed: storage deleted", self.client)
        self.on_wiped()


def _json(text: str | None) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None
