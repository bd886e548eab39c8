"""Refilling an empty bucket from the usage store: admin restore, SEED_FROM_STORE, and the charge.

Why the charge: the store knows usage per rule and hour, not limiter state, so
restored usage waits in restored_usage and the rule's next decision counts it
against its limiter once; a restored bucket does not hand out a fresh quota.
Why two emptiness checks: while the store is read, Cloudflare's input gate
lets other events in (it closes for storage operations only), so a decision
may fill the bucket meanwhile, and the store's older counters must not
overwrite it.
"""
from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Sequence

from durable_objects.rule_store import RuleRow, RuleStore
from src.tollgate import clock, usage_table
from src.tollgate.algorithms import step
from src.tollgate.rules import Rule
from src.tollgate.snapshots import UsageRecord, decode_rows
from src.tollgate.topology import seed_from_store
from src.tollgate.usage import ACCOUNTING_PERIOD_MS

log = logging.getLogger("tollgate.bucket")

SEED_RETRY_MS = 30_000
RESTORE_HORIZON_MS = 32 * 86_400_000   # no limit spans more than a month of hours
_NOT_EMPTY = json.dumps({"ok": False, "error": "bucket is not empty; reset() does not empty it"})


def charge_restored(store: RuleStore, rules: Sequence[Rule], rows: dict[str, RuleRow], now: int) -> None:
    """First decision after a restore: count the restored usage inside each rule's window
    against its limiter, as if spent now, at most the rule's capacity. The store knows usage
    per hour only: a window of an hour or more (a daily quota) is charged every hour it
    overlaps; a shorter window its share of the current hour (usage assumed even)."""
    for rule in rules:
        row = rows[rule.name]
        if row.state is not None:
            continue
        period = rule.limit.period_ms
        window_start = now - period
        used = sum(admitted for start, admitted in store.restored_admitted(rule.name)
                   if start + ACCOUNTING_PERIOD_MS > window_start)
        if period < ACCOUNTING_PERIOD_MS:
            used = used * period // ACCOUNTING_PERIOD_MS
        charge = min(used, rule.limit.capacity)
        if charge > 0:
            charged = step(rule.limit, None, charge, now)
            if charged.allowed:
                row.state = charged.state
                store.set_state(rule.name, row.state)
        store.drop_restored(rule.name)
    store.recheck_restored()


def apply_restore(store: RuleStore, client: str, records: list[UsageRecord]) -> int:
    """Write the store's latest counters per rule and queue recent usage to be charged."""
    latest: dict[str, UsageRecord] = {}
    for rec in records:
        if rec.client != client:
            raise ValueError(f"restore payload: record for client {rec.client!r}, this bucket is {client!r}")
        cur = latest.get(rec.rule)
        if cur is None or (rec.period_start_ms, rec.version) > (cur.period_start_ms, cur.version):
            latest[rec.rule] = rec
    for rec in latest.values():   # each rewrite drops the store's memory copy
        store.put_stored(rec)
    recent = clock.now_ms() - RESTORE_HORIZON_MS
    for rec in records:
        if rec.period_start_ms >= recent and rec.admitted:
            store.add_restored(rec.rule, rec.period_start_ms, rec.admitted)
    store.restored = store.restored or bool(records)
    return len(latest)


async def store_records(env: Any, client: str) -> list[UsageRecord]:
    """The client's rows in the D1 usage store (binding USAGE_DB)."""
    db = getattr(env, "USAGE_DB", None)
    if db is None:
        raise ValueError("restore without records needs the D1 store (binding USAGE_DB)")
    return usage_table.records(await db.prepare(usage_table.CLIENT_RECORDS).bind(client).all())


async def restore(store: RuleStore, env: Any, client: str, payload: str) -> str:
    """`payload`: the client's store records (snapshots.encode_rows); empty: read D1 itself."""
    if not store.is_empty():
        return _NOT_EMPTY
    records = decode_rows(payload, "restore payload") if payload else await store_records(env, client)
    if not store.is_empty():   # a decision got in while the store was read
        return _NOT_EMPTY
    n = apply_restore(store, client, records)
    return json.dumps({"ok": True, "client": client, "restored_rules": n}, separators=(",", ":"))


class Seeder:
    """SEED_FROM_STORE=true: an empty bucket takes its counters from the store once.

    `checked` turns True once seeding is done or not wanted; until then every
    decision awaits the one seed task, shared by concurrent first requests.
    """

    def __init__(self, store: RuleStore, env: Any, client: str) -> None:
        self.store, self.env, self.client = store, env, client
        self.checked = False
        self._task: asyncio.Future | None = None
        self._retry_at = 0

    async def seed_if_asked(self) -> None:
        if not seed_from_store(self.env) or not self.store.is_empty():
            self.checked = True
            return
        if clock.now_ms() < self._retry_at:  # store was down a moment ago: do not wait on it again
            return
        if self._task is None:
            self._task = asyncio.ensure_future(self._seed())
        await asyncio.shield(self._task)

    async def _seed(self) -> None:
        try:
            records = await store_records(self.env, self.client)
        except Exception as exc:  # store down: decide without seeding, try again next request
            log.warning("seed of %s from store failed: %s", self.client, exc)
            self._task = None
            self._retry_at = clock.now_ms() + SEED_RETRY_MS
            return
        if self.store.is_empty():
            apply_restore(self.store, self.client, records)
        self.checked = True
