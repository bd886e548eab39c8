"""SnapshotOutbox: usage records on their way from buckets to the store.

A Worker cannot list Durable Objects, so buckets push their changes here (one
of N shards, chosen by hashing the client) and the cron flush drains the
shards with lease-then-acknowledge:

- `put` upserts keeping the highest version per (client, rule, period), so a
  bucket re-sending after a lost reply changes nothing;
- `lease` hands out the oldest entries and hides them until the lease expires
  (a crashed flush's entries come back by themselves);
- `ack` deletes a leased entry only if its version is still the one leased:
  a newer snapshot that arrived during the flush stays for the next run.

The same class also keeps durable counters (bucket errors, store errors, flush
progress) so /__tollgate/metrics is exact across isolates: every shard counts
what it is told, the object named "metrics" holds the flush bookkeeping.

Decision totals are counted here, when a bucket's snapshot arrives, not in the
store: they are seconds old instead of a cron interval, and they exist whatever
the store is (the HTTP sink cannot be read back). Snapshots are cumulative per
(client, rule, hour) and versioned, so each shard remembers the last counts it
accepted per key (`seen`) and adds only the difference: a re-sent or older
snapshot adds nothing, and a key flushed long ago still adds only what is new.
`seen` forgets hours older than SEEN_KEEP_MS (two days).

Latency histograms (worker/latency.py) arrive here as per-isolate batches of
bucket counts (`add_latency`), added to durable sums; `stats` returns them.
"""
from __future__ import annotations

import json
import os
from typing import Any

from workers import DurableObject

from durable_objects import latency_hours
from durable_objects.outbox_recent import recent as _recent
from durable_objects.sql import Sql, migrate
from src.tollgate import clock
from src.tollgate.snapshots import UsageRecord, decode_rows

# How long a shard remembers the counts it accepted per (client, rule, hour). A bucket keeps
# an hour's counts until the outbox confirms them, so only a snapshot held back longer than
# this (an outbox unreachable for two days) could be counted twice in the metrics totals (the
# store is unaffected). Longer costs storage: one row per active client, rule and hour, about
# 900,000 rows per shard for 100,000 clients with 3 rules over 16 shards.
SEEN_KEEP_MS = 2 * 86_400_000
_COUNTS = ("allowed", "admitted", "denied", "shadow_denied")

_MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE IF NOT EXISTS entry (
             client TEXT NOT NULL, rule TEXT NOT NULL, period_start INTEGER NOT NULL,
             allowed INTEGER NOT NULL, admitted INTEGER NOT NULL,
             denied INTEGER NOT NULL, shadow_denied INTEGER NOT NULL,
             version INTEGER NOT NULL,
             first_ms INTEGER NOT NULL,      -- oldest change not yet in the store
             updated_ms INTEGER NOT NULL,    -- latest change received
             lease_id TEXT, lease_until INTEGER, leased_version INTEGER,
             PRIMARY KEY (client, rule, period_start))""",
        "CREATE INDEX IF NOT EXISTS entry_first ON entry (first_ms)",
        "CREATE INDEX IF NOT EXISTS entry_lease ON entry (lease_id)",
        """CREATE TABLE IF NOT EXISTS counter (
             name TEXT NOT NULL, label TEXT NOT NULL, value INTEGER NOT NULL,
             PRIMARY KEY (name, label))""",
        "CREATE TABLE IF NOT EXISTS gauge (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    ),
    2: (
        """CREATE TABLE IF NOT EXISTS seen (
             client TEXT NOT NULL, rule TEXT NOT NULL, period_start INTEGER NOT NULL,
             allowed INTEGER NOT NULL, admitted INTEGER NOT NULL,
             denied INTEGER NOT NULL, shadow_denied INTEGER NOT NULL,
             version INTEGER NOT NULL,
             PRIMARY KEY (client, rule, period_start))""",
        "CREATE INDEX IF NOT EXISTS seen_period ON seen (period_start)",
        """CREATE TABLE IF NOT EXISTS totals (
             rule TEXT PRIMARY KEY, allowed INTEGER NOT NULL, admitted INTEGER NOT NULL,
             denied INTEGER NOT NULL, shadow_denied INTEGER NOT NULL)""",
    ),
    3: (
        """CREATE TABLE IF NOT EXISTS latency (
             kind TEXT NOT NULL, rules TEXT NOT NULL,
             bucket INTEGER NOT NULL,          -- index into worker/latency.py BOUNDS_MS (+Inf last), -1: sum in µs
             value INTEGER NOT NULL,
             PRIMARY KEY (kind, rules, bucket))""",
    ),
    4: latency_hours.SCHEMA,          # the same sums per UTC hour, for the dashboard's percentiles over time
}
LATENCY_KINDS = ("decision", "origin", "added")
LATENCY_SLOTS = 15                  # 13 bounds + Inf, then the sum: worker/latency.py


def _args(text: str, what: str) -> dict:
    try:
        obj = json.loads(text) if text else {}
    except (TypeError, ValueError):
        raise ValueError(f"{what}: expected a JSON object") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{what}: expected a JSON object")
    return obj


def _pos_int(obj: dict, key: str, what: str, default: int | None = None) -> int:
    value = obj.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{what}.{key}: expected a positive integer, got {value!r}")
    return value


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


class SnapshotOutbox(DurableObject):
    def __init__(self, ctx: Any, env: Any) -> None:
        super().__init__(ctx, env)
        self.sql = Sql(ctx.storage)
        migrate(self.sql, _MIGRATIONS)

    # ------------------------------------------------------------ from buckets
    async def put(self, rows: str) -> str:
        """Accept a bucket's snapshot (snapshots.encode_rows); keep the highest version per key."""
        records = decode_rows(rows, "put")
        now = clock.now_ms()
        for rec in records:
            self._upsert(rec, now)
        return _dumps({"ok": True, "accepted": len(records)})

    def _upsert(self, rec: UsageRecord, now: int) -> None:
        key = (rec.client, rec.rule, rec.period_start_ms)
        prev = self.sql.one("SELECT allowed, admitted, denied, shadow_denied, version FROM seen "
                            "WHERE client = ? AND rule = ? AND period_start = ?", *key)
        if prev is not None and prev["version"] >= rec.version:
            return                  # already accepted (a bucket re-sending after a lost reply)
        counts = (rec.allowed, rec.admitted, rec.denied, rec.shadow_denied)
        # Counts only grow within an hour; max(0, ...) keeps the totals monotonic (Prometheus
        # counters) even if a restored bucket ever sent lower ones.
        added = [max(0, n - (prev[c] if prev is not None else 0)) for n, c in zip(counts, _COUNTS)]
        if any(added):
            self.sql.run("INSERT INTO totals (rule, allowed, admitted, denied, shadow_denied) VALUES (?, ?, ?, ?, ?) "
                         "ON CONFLICT(rule) DO UPDATE SET allowed = allowed + excluded.allowed, "
                         "admitted = admitted + excluded.admitted, denied = denied + excluded.denied, "
                         "shadow_denied = shadow_denied + excluded.shadow_denied", rec.rule, *added)
        self.sql.run("INSERT INTO seen (client, rule, period_start, allowed, admitted, denied, shadow_denied, version) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(client, rule, period_start) DO UPDATE SET "
                     "allowed = excluded.allowed, admitted = excluded.admitted, denied = excluded.denied, "
                     "shadow_denied = excluded.shadow_denied, version = excluded.version", *key, *counts, rec.version)
        self.sql.run(
            """INSERT INTO entry (client, rule, period_start, allowed, admitted, denied, shadow_denied, version,
                                  first_ms, updated_ms)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT(client, rule, period_start) DO UPDATE SET
                 allowed = excluded.allowed, admitted = excluded.admitted, denied = excluded.denied,
                 shadow_denied = excluded.shadow_denied, version = excluded.version,
                 updated_ms = excluded.updated_ms
               WHERE excluded.version > entry.version""",
            rec.client, rec.rule, rec.period_start_ms, rec.allowed, rec.admitted, rec.denied, rec.shadow_denied,
            rec.version, now, now)

    async def holds(self, client: str) -> str:
        """`{"entries": n}`: this client's usage not yet confirmed by the store (an idle bucket
        deletes itself only at 0, durable_objects/lifecycle.py)."""
        if not isinstance(client, str) or not client:
            raise ValueError("holds: expected a client key")
        n = self.sql.one("SELECT COUNT(*) AS n FROM entry WHERE client = ?", client)["n"]
        return _dumps({"entries": n})

    # ------------------------------------------------------------ for the cron flush
    async def lease(self, args: str) -> str:
        """`{"limit": N, "lease_ms": M}` -> `{"lease": id, "rows": [...]}`, oldest first."""
        opts = _args(args, "lease")
        limit = _pos_int(opts, "limit", "lease")
        lease_ms = _pos_int(opts, "lease_ms", "lease")
        now = clock.now_ms()
        lease_id = os.urandom(16).hex()  # not uuid: importing it costs ~15 ms of start-up on Pyodide
        self.sql.run(
            """UPDATE entry SET lease_id = ?, lease_until = ?, leased_version = version
               WHERE rowid IN (SELECT rowid FROM entry WHERE lease_until IS NULL OR lease_until <= ?
                               ORDER BY first_ms LIMIT ?)""",
            lease_id, now + lease_ms, now, limit)
        rows = self.sql.rows(
            "SELECT client, rule, period_start, allowed, admitted, denied, shadow_denied, version "
            "FROM entry WHERE lease_id = ?", lease_id)
        if not rows:
            return _dumps({"lease": None, "rows": []})
        return _dumps({"lease": lease_id, "rows": [
            [r["client"], r["rule"], r["period_start"], r["allowed"], r["admitted"], r["denied"],
             r["shadow_denied"], r["version"]] for r in rows]})

    async def ack(self, lease_id: str) -> str:
        """The store confirmed the leased rows: delete those still at the leased version."""
        done = "lease_id = ? AND version <= leased_version"
        deleted = self.sql.one(f"SELECT COUNT(*) AS n FROM entry WHERE {done}", lease_id)["n"]
        self.sql.run(f"DELETE FROM entry WHERE {done}", lease_id)
        kept = self.sql.one("SELECT COUNT(*) AS n FROM entry WHERE lease_id = ?", lease_id)["n"]
        # Newer snapshots arrived meanwhile: they stay, and their lag counts from their arrival.
        self.sql.run("UPDATE entry SET lease_id = NULL, lease_until = NULL, leased_version = NULL, "
                     "first_ms = updated_ms WHERE lease_id = ?", lease_id)
        self.sql.run("DELETE FROM seen WHERE period_start < ?", clock.now_ms() - SEEN_KEEP_MS)
        return _dumps({"deleted": deleted, "kept": kept})

    async def release(self, lease_id: str) -> str:
        """The store refused: make the rows available again now instead of at lease expiry."""
        n = self.sql.one("SELECT COUNT(*) AS n FROM entry WHERE lease_id = ?", lease_id)["n"]
        self.sql.run("UPDATE entry SET lease_id = NULL, lease_until = NULL, leased_version = NULL "
                     "WHERE lease_id = ?", lease_id)
        return _dumps({"released": n})

    # ------------------------------------------------------------ durable counters and status
    async def count(self, args: str) -> str:
        """`{"name": ..., "label": ..., "n": 1}`: add to a durable counter."""
        opts = _args(args, "count")
        name, label = opts.get("name"), opts.get("label", "")
        if not isinstance(name, str) or not name or not isinstance(label, str):
            raise ValueError("count: expected name (non-empty string) and label (string)")
        n = _pos_int(opts, "n", "count", default=1)
        self.sql.run("INSERT INTO counter (name, label, value) VALUES (?, ?, ?) "
                     "ON CONFLICT(name, label) DO UPDATE SET value = value + excluded.value", name, label, n)
        return _dumps({"ok": True})

    async def set_gauges(self, args: str) -> str:
        """`{"name": int, ...}`: flush bookkeeping (cursor, last success time)."""
        for name, value in _args(args, "set_gauges").items():
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"set_gauges.{name}: expected an integer, got {value!r}")
            self.sql.run("INSERT INTO gauge (name, value) VALUES (?, ?) "
                         "ON CONFLICT(name) DO UPDATE SET value = excluded.value", name, value)
        return _dumps({"ok": True})

    async def add_latency(self, batch: str) -> str:
        """`{kind: {rules: [count per bucket..., sum µs]}}` from one isolate: add to the sums
        (and to this hour's, durable_objects/latency_hours.py)."""
        now = clock.now_ms()
        for kind, series in _args(batch, "add_latency").items():
            if kind not in LATENCY_KINDS or not isinstance(series, dict):
                raise ValueError(f"add_latency.{kind}: unknown kind (known: {', '.join(LATENCY_KINDS)})")
            for rules, slots in series.items():
                if (not isinstance(slots, list) or len(slots) != LATENCY_SLOTS
                        or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in slots)):
                    raise ValueError(f"add_latency.{kind}.{rules}: expected {LATENCY_SLOTS} counts >= 0")
                for bucket, n in enumerate(slots[:-1]):
                    if n:
                        self._add_latency(kind, rules, bucket, n, now)
                self._add_latency(kind, rules, -1, slots[-1], now)
        latency_hours.forget(self.sql, now)
        return _dumps({"ok": True})

    def _add_latency(self, kind: str, rules: str, bucket: int, n: int, now: int) -> None:
        self.sql.run("INSERT INTO latency (kind, rules, bucket, value) VALUES (?, ?, ?, ?) "
                     "ON CONFLICT(kind, rules, bucket) DO UPDATE SET value = value + excluded.value",
                     kind, rules, bucket, n)
        latency_hours.add(self.sql, kind, rules, now, bucket, n)

    async def recent(self, args: str) -> str:
        """`{"since_ms", "top"}`: usage per rule and the most-denied clients since then, from `seen`
        (the dashboard page; durable_objects/outbox_recent.py)."""
        return _recent(self.sql, args, LATENCY_SLOTS)

    async def stats(self) -> str:
        """Depth, oldest unflushed change, leased entries, counters and gauges."""
        row = self.sql.one("SELECT COUNT(*) AS depth, MIN(first_ms) AS oldest, "
                           "SUM(CASE WHEN lease_id IS NOT NULL THEN 1 ELSE 0 END) AS leased FROM entry") or {}
        counters: dict[str, dict[str, int]] = {}
        for r in self.sql.rows("SELECT name, label, value FROM counter"):
            counters.setdefault(r["name"], {})[r["label"]] = r["value"]
        gauges = {r["name"]: r["value"] for r in self.sql.rows("SELECT name, value FROM gauge")}
        totals = {r["rule"]: [r[c] for c in _COUNTS] for r in self.sql.rows("SELECT * FROM totals")}
        latency: dict[str, dict[str, list[int]]] = {}
        for r in self.sql.rows("SELECT kind, rules, bucket, value FROM latency"):
            slots = latency.setdefault(r["kind"], {}).setdefault(r["rules"], [0] * LATENCY_SLOTS)
            slots[r["bucket"]] = r["value"]          # -1: the sum, last
        return _dumps({"depth": row.get("depth") or 0, "oldest_ms": row.get("oldest"),
                       "leased": row.get("leased") or 0, "counters": counters, "gauges": gauges,
                       "totals": totals, "latency": latency, "now_ms": clock.now_ms()})
