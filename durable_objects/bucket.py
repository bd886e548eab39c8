"""ClientBucket: one Durable Object per client, the only place a decision is made.

Each decision reads the requested rules' rows (from memory once this instance
has seen them), asks the pure core, and writes only the rows that changed,
with no `await` in between (code between awaits runs alone in a Durable
Object, so concurrent requests cannot both take the last token). Usage
counters per accounting period ride along in the same row.

The class is the table of contents; each job has its own module:
- durable_objects/rule_store.py: schema, migrations, load and write of the rows;
- durable_objects/outbox_pusher.py: pending changes, the alarm, the confirmation;
- durable_objects/bucket_admin.py: inspect and reset;
- durable_objects/restore.py: restore, SEED_FROM_STORE, charging restored usage;
- durable_objects/lifecycle.py: an idle, confirmed bucket deletes itself (cleanup alarm, deleteAll);
- durable_objects/rotation.py: IDENTITY_SECRET rotation (take over from, or forward to, the other name);
- durable_objects/renames.py: a renamed rule (previous_names) decides on its former name's row;
- durable_objects/slots.py: concurrency slots, taken in the decision, freed by release/renew.
- durable_objects/lease_desk.py: leased budgets (mode = "lease"): grants, returns, units spent.
"""
from __future__ import annotations

from typing import Any

from workers import DurableObject

from durable_objects import bucket_admin, restore
from durable_objects.lease_desk import LeaseDesk, settle
from durable_objects.lifecycle import Lifecycle
from durable_objects.renames import Renames
from durable_objects.rotation import Rotation
from durable_objects.outbox_pusher import OutboxPusher
from durable_objects.rule_store import RuleStore
from durable_objects.slots import SlotStore, asks_slots
from durable_objects.sql import Sql
from src.tollgate import clock
from src.tollgate.decision import decide
from src.tollgate.deny_report import decode_report, split_payload
from src.tollgate.lease_wire import decode_ask, encode_grants
from src.tollgate.snapshots import UsageRecord
from src.tollgate.usage import period_start
from src.tollgate.concurrency import is_slot_id
from src.tollgate.wire import decode_decide, encode_decision


def _object_name(ctx: Any) -> str:
    """The name the Worker used in getByName() (ctx.id.name, Cloudflare changelog
    2026-03-15 "Access Durable Object name via ctx.id.name"); the hex id otherwise."""
    oid = getattr(ctx, "id", None)
    name = getattr(oid, "name", None)
    if isinstance(name, str) and name:
        return name
    return str(oid) if oid is not None else "unknown"


class ClientBucket(DurableObject):
    def __init__(self, ctx: Any, env: Any) -> None:
        super().__init__(ctx, env)
        self.client = _object_name(ctx)
        self._open()

    def _open(self) -> None:
        """Storage and its helpers; again after the bucket deleted its storage (lifecycle.py)."""
        storage = self.ctx.storage
        self.sql = Sql(storage)
        self.store = RuleStore(self.sql)
        self.pusher = OutboxPusher(self.store, storage, self.env, self.client)
        self.seeder = restore.Seeder(self.store, self.env, self.client)
        self.lifecycle = Lifecycle(self.sql, self.store, storage, self.env, self.client, self._wiped)
        self.pusher.lifecycle = self.lifecycle
        self.rotation = Rotation(self.sql, self.store, self.env, self.client, self.lifecycle.limits)
        self.slots = SlotStore(self.sql)
        self.lifecycle.hold_until = lambda: max(self.rotation.keep_until(), self.slots.last_expiry())
        self.renames = Renames(self.sql, self.store, self.client)
        self.desk = LeaseDesk()
        self.wiped = False

    def _wiped(self) -> None:
        # Tables are gone: build them on the next event (not now, or the object keeps storage).
        self.wiped = True
        self.seeder.checked = False     # routes the next decision through _warm_up

    async def _warm_up(self, payload: str, previous: str | None) -> str | None:
        """The first decision of this instance, or of a fresh bucket after a cleanup; every
        decision of a bucket that moved to a new name (its answer, decided there)."""
        self._awake()
        if self.rotation.moved_to is not None:
            return await self.rotation.forward(payload)
        await self.rotation.take_over(previous)
        await self.seeder.seed_if_asked()
        return None

    def _awake(self) -> None:
        if self.wiped:
            self._open()

    # ---------------------------------------------------------------- decide (the request path)
    async def decide(self, payload: str, previous: str | None = None) -> str:
        """One atomic decision over the given rules; JSON in and out (src/tollgate/wire.py).
        `previous`: this client's name under IDENTITY_SECRET_PREVIOUS, during a rotation.
        After a newline the payload may carry the isolate's own denials (deny_report.py)."""
        payload, reported = split_payload(payload)
        rules, cost = decode_decide(payload)
        if not self.seeder.checked:
            forwarded = await self._warm_up(payload, previous)
            if forwarded is not None:
                return forwarded
        store = self.store
        asked, rules = rules, self.renames.canonical(rules)   # the same tuple unless a rule was renamed
        # --- read, decide, write: no await until the writes are done ---
        now = clock.now_ms()
        period = period_start(now)
        try:
            rows = store.load([r.name for r in rules], period)
            if store.restored:
                restore.charge_restored(store, rules, rows, now)
            states = {name: row.state for name, row in rows.items()}
            slotted = asks_slots(rules)
            if slotted:     # concurrency rules: their live slots, in the same atomic step
                states.update(self.slots.summaries(rules, now))
            decision = decide(rules, states, cost, now)
            changed = store.record(decision, rows, cost, period)
            slot = self.slots.take(decision, rules, now) if slotted else None
            if reported:
                changed = store.add_denied(reported, period) or changed
        except BaseException:
            store.forget()      # rows may be changed in memory and not in storage: read them again
            raise
        # --- then make sure the change leaves the object ---
        decision = await self._settled(decision, asked, rules, changed, now)
        return encode_decision(decision, slot)

    async def _settled(self, decision, asked: tuple, rules: tuple, changed: bool, now: int):
        """After a decision's synchronous step: the alarm that pushes the change, and the
        answer under the names the caller asked for."""
        self.lifecycle.note(rules)
        if changed:
            await self.pusher.ensure_alarm(now)
        return decision if rules is asked else self.renames.answered_as(decision, asked, rules)

    # ---------------------------------------------------------------- concurrency slots (slots.py)
    async def release(self, slot: str) -> str:
        """Free a concurrency slot: the request holding it has ended. A slot not held (released
        twice, expired, never issued) changes nothing and says so."""
        self._awake()
        return '{"released":true}' if is_slot_id(slot) and self.slots.release(slot) else '{"released":false}'

    async def renew(self, slot: str) -> str:
        """The holder is still streaming: the slot counts for another hold from now."""
        self._awake()
        ok = is_slot_id(slot) and self.slots.renew(slot, clock.now_ms())
        return '{"renewed":true}' if ok else '{"renewed":false}'

    async def lease(self, payload: str, previous: str | None = None) -> str:
        """`decide` for rules in lease mode: the same decision (none when the ask only renews),
        plus the isolate's leases settled in the same step (lease_desk.py, lease_wire.py)."""
        text, _, tail = payload.partition("\n")
        ask = decode_ask(tail)
        rules, cost = decode_decide(text)
        self._awake()
        if self.rotation.moved_to is not None:
            return await self.env.BUCKETS.getByName(self.rotation.moved_to).lease(payload)
        if not self.seeder.checked:
            await self._warm_up(text, previous)
        asked, rules = rules, self.renames.canonical(rules)
        now = clock.now_ms()
        try:
            decision, grants, changed = settle(self.desk, self.store, rules, cost, ask, now, rules is asked)
        except BaseException:
            self.store.forget()
            raise
        decision = await self._settled(decision, asked, rules, changed, now)
        return encode_grants(encode_decision(decision), grants)

    async def count_denied(self, report: str) -> str:
        """Denials an isolate answered from its deny cache (worker/deny_cache.py), in memory."""
        self._awake()
        now = clock.now_ms()
        if self.store.add_denied(decode_report(report), period_start(now)):
            await self.pusher.ensure_alarm(now)
        return '{"ok":true}'

    # ---------------------------------------------------------------- alarm: push to the outbox
    def pending(self) -> list[UsageRecord]:
        """Every change the outbox has not confirmed: dirty rows and closed periods."""
        self._awake()
        return self.pusher.pending()

    async def alarm(self, alarm_info: Any = None) -> None:
        self._awake()
        await self.pusher.push()
        await self.lifecycle.after_alarm(bool(self.pusher.alarm_pending))

    # ---------------------------------------------------------------- admin
    async def inspect(self, payload: str | None = None) -> str:
        """State and usage per rule; with a decide payload (cost 0) also remaining/reset per rule."""
        if self.wiped:   # deleted itself: answer as an empty bucket without building storage again
            return bucket_admin.inspect_deleted(self.client, payload, clock.now_ms())
        answer = bucket_admin.inspect(self.store, self.client, payload, clock.now_ms(), self.lifecycle.cleanup_at,
                                      self.slots)
        if self.store.is_empty():
            await self.lifecycle.schedule()     # looking at a client never seen leaves nothing behind
        return answer

    async def reset(self) -> str:
        """Forget limiter state; usage counters (and their way to the store) are kept."""
        self._awake()
        self.slots.clear()      # an operator's reset also frees every slot (a stuck client starts afresh)
        self.desk.forget()
        return bucket_admin.reset(self.store, self.client)

    # ---------------------------------------------------------------- secret rotation
    async def hand_over(self, new_client: str) -> str:
        """The client's bucket under the new secret takes this one's limiter states (rotation.py)."""
        self._awake()
        answer = self.rotation.hand_over(new_client)
        self.seeder.checked = False     # every later decision takes _warm_up, which forwards it
        await self.lifecycle.schedule()
        return answer

    # ---------------------------------------------------------------- restore
    def is_empty(self) -> bool:
        self._awake()
        return self.store.is_empty()

    async def restore(self, payload: str = "") -> str:
        """Refill an empty bucket's usage counters from the store's last snapshot.

        `payload`: the client's store records (snapshots.encode_rows); empty means
        read them from the D1 store (USAGE_DB) directly. Refuses a non-empty bucket.
        """
        self._awake()
        answer = await restore.restore(self.store, self.env, self.client, payload)
        await self.lifecycle.schedule()
        return answer
