"""ClientBucket: one Durable Object per client, the only place a decision is made.

Each decision reads the requested rules' rows (from memory once this instance
has seen them), asks the pure core, and writes only the rows that changed,
with no `await` in between (code between awaits
runs alone in a Durable Object, so concurrent requests cannot both take the
last token). Usage counters per accounting period ride along in the same
row; the alarm pushes whatever changed to a SnapshotOutbox shard and only
then marks it sent, so a change survives crashes, outbox outages and a
bucket that is never touched again.
"""
from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from workers import DurableObject

from durable_objects.sql import Sql, get_alarm, migrate, set_alarm
from src.tollgate import clock, usage_table
from src.tollgate.algorithms import step
from src.tollgate.decision import decide
from src.tollgate.snapshots import UsageRecord, decode_rows, encode_rows, shard_for, shard_name
from src.tollgate.topology import outbox_shards, seed_from_store, snapshot_delay_ms
from src.tollgate.usage import ACCOUNTING_PERIOD_MS, period_start
from src.tollgate.wire import decode_decide, encode_decision

log = logging.getLogger("tollgate.bucket")

MAX_RETRY_DELAY_MS = 300_000
SEED_RETRY_MS = 30_000

# Migrations run in the constructor: a deployed object keeps its storage, so
# every schema change is a new numbered step applied once, recorded in meta.
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE IF NOT EXISTS rule_state (
             rule TEXT PRIMARY KEY,
             s0 INTEGER, s1 INTEGER, s2 INTEGER,
             period_start INTEGER NOT NULL,
             allowed INTEGER NOT NULL, admitted INTEGER NOT NULL,
             denied INTEGER NOT NULL, shadow_denied INTEGER NOT NULL,
             version INTEGER NOT NULL,
             sent_version INTEGER NOT NULL DEFAULT 0)""",
        """CREATE TABLE IF NOT EXISTS closed_usage (
             rule TEXT NOT NULL, period_start INTEGER NOT NULL,
             allowed INTEGER NOT NULL, admitted INTEGER NOT NULL,
             denied INTEGER NOT NULL, shadow_denied INTEGER NOT NULL,
             version INTEGER NOT NULL,
             PRIMARY KEY (rule, period_start))""",
    ),
    2: (
        # Usage restored from the store (restore()/seed), charged to each rule's limiter
        # state on its next decision so a restored bucket does not hand out a fresh quota.
        """CREATE TABLE IF NOT EXISTS restored_usage (
             rule TEXT NOT NULL, period_start INTEGER NOT NULL, admitted INTEGER NOT NULL,
             PRIMARY KEY (rule, period_start))""",
    ),
}

_UPSERT_HEAD = """INSERT INTO rule_state (rule, s0, s1, s2, period_start, allowed, admitted, denied,
               shadow_denied, version, sent_version) VALUES """
_UPSERT_ROW = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_UPSERT_TAIL = """
             ON CONFLICT(rule) DO UPDATE SET s0 = excluded.s0, s1 = excluded.s1, s2 = excluded.s2,
               period_start = excluded.period_start, allowed = excluded.allowed,
               admitted = excluded.admitted, denied = excluded.denied,
               shadow_denied = excluded.shadow_denied, version = excluded.version"""
# One statement writes every changed row of a decision (11 bound values a row,
# 9 rows at most under SQLite storage's 100-parameter limit): each exec is a
# trip through the platform, so a three-rule decision pays one, not three.
_UPSERTS = {n: _UPSERT_HEAD + ", ".join([_UPSERT_ROW] * n) + _UPSERT_TAIL for n in range(1, 10)}

# Limiter state crosses as decimal text both ways. GCRA keeps ms x count (about 1e16 for
# 6000/hour), above 2^53: on Cloudflare a Python int that large becomes a JS BigInt, which
# ctx.storage.sql cannot bind, and an INTEGER that large reads back as a lossy double
# (workerd src/workerd/api/sql.c++). Text into the INTEGER columns is stored as an exact
# INTEGER; CAST(... AS TEXT) reads it back exactly. Found by tests/conformance; pinned by
# tests/gateway/test_edge_conformance.py.
_ROWS = ("SELECT rule, CAST(s0 AS TEXT) AS s0, CAST(s1 AS TEXT) AS s1, CAST(s2 AS TEXT) AS s2, "
         "period_start, allowed, admitted, denied, shadow_denied, version, sent_version FROM rule_state")


def _object_name(ctx: Any) -> str:
    """The name the Worker used in getByName() (ctx.id.name, Cloudflare changelog
    2026-03-15 "Access Durable Object name via ctx.id.name"); the hex id otherwise."""
    oid = getattr(ctx, "id", None)
    name = getattr(oid, "name", None)
    if isinstance(name, str) and name:
        return name
    return str(oid) if oid is not None else "unknown"


class _Row:
    """One rule_state row in Python, mutated by a decision and written back once."""

    __slots__ = ("rule", "state", "period_start", "allowed", "admitted", "denied", "shadow_denied",
                 "version", "sent_version")

    def __init__(self, rule: str, period: int) -> None:
        self.rule, self.state, self.period_start = rule, None, period
        self.allowed = self.admitted = self.denied = self.shadow_denied = 0
        self.version = self.sent_version = 0

    @classmethod
    def from_db(cls, d: dict) -> "_Row":
        row = cls(d["rule"], d["period_start"])
        row.state = None if d["s0"] is None else (int(d["s0"]), int(d["s1"]), int(d["s2"]))
        for f in ("allowed", "admitted", "denied", "shadow_denied", "version", "sent_version"):
            setattr(row, f, d[f])
        return row

    def usage(self, client: str) -> UsageRecord:
        return UsageRecord(client, self.rule, self.period_start, self.allowed, self.admitted, self.denied,
                           self.shadow_denied, self.version)


class ClientBucket(DurableObject):
    def __init__(self, ctx: Any, env: Any) -> None:
        super().__init__(ctx, env)
        self.sql = Sql(ctx.storage)
        migrate(self.sql, _MIGRATIONS)
        self.client = _object_name(ctx)
        self._restored = self.sql.one("SELECT 1 AS x FROM restored_usage LIMIT 1") is not None
        self._alarm_pending: bool | None = None  # None: unknown, ask storage once
        self._retries = 0
        self._seeding = None  # an in-flight seed-from-store, shared by concurrent first requests
        self._seed_checked = False
        self._seed_retry_at = 0
        # rule -> its row as stored (or as it would be: no row yet). This instance is the only
        # writer of its storage (one instance per object, one event at a time), so a row read
        # or written once stays true until this instance changes it: a warm bucket decides
        # without reading. Cleared whenever something else rewrites rows, or a write fails.
        self._rows: dict[str, _Row] = {}

    # ---------------------------------------------------------------- decide
    async def decide(self, payload: str) -> str:
        """One atomic decision over the given rules; JSON in and out (src/tollgate/wire.py)."""
        rules, cost = decode_decide(payload)
        if not self._seed_checked:
            await self._seed_if_asked()
        # --- read, decide, write: no await until the writes are done ---
        now = clock.now_ms()
        period = period_start(now)
        try:
            rows = self._load([r.name for r in rules], period)
            if self._restored:
                self._charge_restored(rules, rows, now)
            states = {name: row.state for name, row in rows.items()}
            decision = decide(rules, states, cost, now)
            changed: list[_Row] = []
            if decision.allowed:
                for result in decision.results:
                    row = rows[result.name]
                    self._roll(row, period)
                    if result.shadow and not result.allowed:
                        row.shadow_denied += 1
                    else:
                        row.allowed += 1
                        row.admitted += cost
                        row.state = decision.new_states.get(result.name, row.state)
                    changed.append(row)
            elif decision.denied_by is not None:
                row = rows[decision.denied_by]
                self._roll(row, period)
                row.denied += 1
                changed.append(row)
            self._write(changed)
        except BaseException:
            self._rows.clear()      # rows may be changed in memory and not in storage: read them again
            raise
        # --- then make sure the change leaves the object ---
        if changed:
            await self._ensure_alarm(now)
        return encode_decision(decision)

    def _load(self, names: list[str], period: int) -> dict[str, _Row]:
        cached = self._rows
        missing = [n for n in names if n not in cached]
        if missing:
            marks = ",".join("?" * len(missing))
            found = {d["rule"]: _Row.from_db(d) for d in
                     self.sql.rows(f"{_ROWS} WHERE rule IN ({marks})", *missing)}
            for n in missing:
                cached[n] = found.get(n) or _Row(n, period)
        return {n: cached[n] for n in names}

    def _charge_restored(self, rules: tuple, rows: dict[str, _Row], now: int) -> None:
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
            used = sum(r["admitted"] for r in self.sql.rows(
                "SELECT period_start, admitted FROM restored_usage WHERE rule = ?", rule.name)
                if r["period_start"] + ACCOUNTING_PERIOD_MS > window_start)
            if period < ACCOUNTING_PERIOD_MS:
                used = used * period // ACCOUNTING_PERIOD_MS
            charge = min(used, rule.limit.capacity)
            if charge > 0:
                charged = step(rule.limit, None, charge, now)
                if charged.allowed:
                    row.state = charged.state
                    s0, s1, s2 = (str(v) for v in row.state)  # decimal text, see _ROWS
                    self.sql.run("UPDATE rule_state SET s0 = ?, s1 = ?, s2 = ? WHERE rule = ?", s0, s1, s2, rule.name)
            self.sql.run("DELETE FROM restored_usage WHERE rule = ?", rule.name)
        self._restored = self.sql.one("SELECT 1 AS x FROM restored_usage LIMIT 1") is not None

    def _roll(self, row: _Row, period: int) -> None:
        """Start a new accounting period; unsent counters of the old one wait in closed_usage."""
        if period <= row.period_start:
            return
        if row.version > row.sent_version:
            self.sql.run(
                "INSERT INTO closed_usage (rule, period_start, allowed, admitted, denied, shadow_denied, version) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(rule, period_start) DO UPDATE SET "
                "allowed = excluded.allowed, admitted = excluded.admitted, denied = excluded.denied, "
                "shadow_denied = excluded.shadow_denied, version = excluded.version",
                row.rule, row.period_start, row.allowed, row.admitted, row.denied, row.shadow_denied, row.version)
        row.period_start = period
        row.allowed = row.admitted = row.denied = row.shadow_denied = 0

    def _write(self, rows: list[_Row]) -> None:
        for start in range(0, len(rows), 9):
            chunk = rows[start:start + 9]
            values: list = []
            for row in chunk:
                row.version += 1
                s0, s1, s2 = (str(v) for v in row.state) if row.state is not None else (None, None, None)
                values += (row.rule, s0, s1, s2, row.period_start, row.allowed, row.admitted,
                           row.denied, row.shadow_denied, row.version, row.sent_version)
            self.sql.run(_UPSERTS[len(chunk)], *values)

    async def _ensure_alarm(self, now: int) -> None:
        if self._alarm_pending:
            return
        if await get_alarm(self.ctx.storage) is None:
            await set_alarm(self.ctx.storage, now + snapshot_delay_ms(self.env))
        self._alarm_pending = True

    # ---------------------------------------------------------------- alarm: push to the outbox
    def pending(self) -> list[UsageRecord]:
        """Every change the outbox has not confirmed: dirty rows and closed periods."""
        out = [_Row.from_db(d).usage(self.client) for d in
               self.sql.rows(f"{_ROWS} WHERE version > sent_version")]
        out += [UsageRecord(self.client, d["rule"], d["period_start"], d["allowed"], d["admitted"], d["denied"],
                            d["shadow_denied"], d["version"])
                for d in self.sql.rows("SELECT * FROM closed_usage")]
        return out

    async def alarm(self, alarm_info: Any = None) -> None:
        self._alarm_pending = False
        records = self.pending()
        if not records:
            return
        outbox = self.env.OUTBOX.getByName(shard_name(shard_for(self.client, outbox_shards(self.env))))
        try:
            await outbox.put(encode_rows(records))
        except Exception as exc:  # outbox unreachable: keep everything, try again later
            self._retries += 1
            delay = snapshot_delay_ms(self.env)
            wait = min(MAX_RETRY_DELAY_MS, max(delay, 1000) * 2 ** min(self._retries - 1, 10))
            log.warning("snapshot of %s not delivered (%s); retry in %d ms", self.client, exc, wait)
            await set_alarm(self.ctx.storage, clock.now_ms() + wait)
            self._alarm_pending = True
            return
        self._retries = 0
        self._confirm(records)
        if self.sql.one("SELECT 1 AS x FROM rule_state WHERE version > sent_version "
                        "UNION ALL SELECT 1 FROM closed_usage LIMIT 1"):
            await self._ensure_alarm(clock.now_ms())  # changed while we were sending

    def _confirm(self, records: list[UsageRecord]) -> None:
        """The outbox holds these versions: clear exactly them, keep anything newer."""
        self._rows.clear()          # sent_version changes below
        for rec in records:
            self.sql.run("UPDATE rule_state SET sent_version = MAX(sent_version, ?) WHERE rule = ?",
                         rec.version, rec.rule)
            self.sql.run("DELETE FROM closed_usage WHERE rule = ? AND period_start = ? AND version <= ?",
                         rec.rule, rec.period_start_ms, rec.version)

    # ---------------------------------------------------------------- admin
    async def inspect(self, payload: str | None = None) -> str:
        """State and usage per rule; with a decide payload (cost 0) also remaining/reset per rule."""
        now = clock.now_ms()
        rows = {d["rule"]: _Row.from_db(d) for d in self.sql.rows(f"{_ROWS} ORDER BY rule")}
        out: dict[str, Any] = {"client": self.client, "now_ms": now, "rules": {}}
        for name, row in rows.items():
            out["rules"][name] = {
                "state": list(row.state) if row.state is not None else None,
                "period_start_ms": row.period_start, "allowed": row.allowed, "admitted": row.admitted,
                "denied": row.denied, "shadow_denied": row.shadow_denied,
                "version": row.version, "sent_version": row.sent_version,
            }
        if payload:
            rules, _ = decode_decide(payload)
            states = {r.name: rows[r.name].state if r.name in rows else None for r in rules}
            for result in decide(rules, states, 0, now).results:
                entry = out["rules"].setdefault(result.name, {"state": None})
                entry.update(remaining=result.remaining, reset_ms=result.reset_ms)
        out["closed"] = [dict(d) for d in self.sql.rows("SELECT * FROM closed_usage ORDER BY rule, period_start")]
        out["unsent"] = len(self.pending())
        return json.dumps(out, separators=(",", ":"))

    async def reset(self) -> str:
        """Forget limiter state; usage counters (and their way to the store) are kept."""
        n = len(self.sql.rows("SELECT rule FROM rule_state WHERE s0 IS NOT NULL"))
        self._rows.clear()
        self.sql.run("UPDATE rule_state SET s0 = NULL, s1 = NULL, s2 = NULL")
        self.sql.run("DELETE FROM restored_usage")  # a reset is a reset: restored usage is not charged either
        self._restored = False
        return json.dumps({"client": self.client, "reset_rules": n}, separators=(",", ":"))

    def is_empty(self) -> bool:
        return self.sql.one("SELECT 1 AS x FROM rule_state UNION ALL SELECT 1 FROM closed_usage LIMIT 1") is None

    async def restore(self, payload: str = "") -> str:
        """Refill an empty bucket's usage counters from the store's last snapshot.

        `payload`: the client's store records (snapshots.encode_rows); empty means
        read them from the D1 store (USAGE_DB) directly. Refuses a non-empty bucket.
        """
        refused = json.dumps({"ok": False, "error": "bucket is not empty; reset() does not empty it"})
        if not self.is_empty():
            return refused
        records = decode_rows(payload, "restore payload") if payload else await self._store_records()
        # While the store was read, Cloudflare's input gate let other events in (it closes
        # for storage operations only): a decision may have filled the bucket meanwhile, and
        # the store's older counters must not overwrite it.
        if not self.is_empty():
            return refused
        n = self._apply_restore(records)
        return json.dumps({"ok": True, "client": self.client, "restored_rules": n}, separators=(",", ":"))

    def _apply_restore(self, records: list[UsageRecord]) -> int:
        self._rows.clear()          # rows are written below
        latest: dict[str, UsageRecord] = {}
        for rec in records:
            if rec.client != self.client:
                raise ValueError(f"restore payload: record for client {rec.client!r}, this bucket is {self.client!r}")
            cur = latest.get(rec.rule)
            if cur is None or (rec.period_start_ms, rec.version) > (cur.period_start_ms, cur.version):
                latest[rec.rule] = rec
        for rec in latest.values():
            # sent_version = version: the store already holds it, nothing to send back.
            self.sql.run(_UPSERTS[1], rec.rule, None, None, None, rec.period_start_ms, rec.allowed, rec.admitted,
                         rec.denied, rec.shadow_denied, rec.version, rec.version)
        recent = clock.now_ms() - 32 * 86_400_000  # no limit spans more than a month of hours
        for rec in records:
            if rec.period_start_ms >= recent and rec.admitted:
                self.sql.run("INSERT INTO restored_usage (rule, period_start, admitted) VALUES (?, ?, ?) "
                             "ON CONFLICT(rule, period_start) DO UPDATE SET admitted = MAX(admitted, excluded.admitted)",
                             rec.rule, rec.period_start_ms, rec.admitted)
        self._restored = self._restored or bool(records)
        return len(latest)

    async def _store_records(self) -> list[UsageRecord]:
        db = getattr(self.env, "USAGE_DB", None)
        if db is None:
            raise ValueError("restore without records needs the D1 store (binding USAGE_DB)")
        return usage_table.records(await db.prepare(usage_table.CLIENT_RECORDS).bind(self.client).all())

    async def _seed_if_asked(self) -> None:
        """SEED_FROM_STORE=true: an empty bucket takes its counters from the store once."""
        if not seed_from_store(self.env) or not self.is_empty():
            self._seed_checked = True
            return
        if clock.now_ms() < self._seed_retry_at:  # store was down a moment ago: do not wait on it again
            return
        if self._seeding is None:  # one task, awaited by every concurrent first request
            self._seeding = asyncio.ensure_future(self._seed())
        await asyncio.shield(self._seeding)

    async def _seed(self) -> None:
        try:
            records = await self._store_records()
        except Exception as exc:  # store down: decide without seeding, try again next request
            log.warning("seed of %s from store failed: %s", self.client, exc)
            self._seeding = None
            self._seed_retry_at = clock.now_ms() + SEED_RETRY_MS
            return
        if self.is_empty():
            self._apply_restore(records)
        self._seed_checked = True
