"""Cron flush: drain every SnapshotOutbox shard into the usage store.

Lease-then-acknowledge: rows leased from one or more shards fill one store
call (up to the store's rows per call); only after the store confirmed are the
leases acknowledged, and an ack deletes an entry only if no newer version
arrived meanwhile. A failed write releases the leases; a crash leaves them to
expire (FLUSH_LEASE_MS). Either way the rows are flushed by a later run, and
the store's highest-version upsert makes the repeat harmless.

One invocation stays inside Workers limits: it stops before FLUSH_TIME_BUDGET_MS
or FLUSH_SUBREQUEST_BUDGET (below the 1,000 subrequests a Worker may make) and
saves the shard to start from next time (the cursor), so no shard starves.
"""
from __future__ import annotations

import json
import logging
from typing import Any, NamedTuple

from src.tollgate import clock
from src.tollgate.envvars import env_int
from src.tollgate.snapshots import decode_rows, shard_name
from src.tollgate.topology import METRICS_OBJECT, flush_subrequest_budget, flush_time_budget_ms, outbox_shards
from worker.stores import StoreError, UsageStore, open_store

log = logging.getLogger("tollgate.flush")


class FlushReport:
    """What one flush run did. A plain class, not a dataclass: importing `dataclasses` costs
    ~35 ms of Worker start-up on Pyodide (measured by tests/conformance)."""

    _DEFAULTS = (
        ("complete", False),         # every shard drained
        ("stopped", None),           # why it stopped early: "time", "subrequests", "store"
        ("cursor", 0),               # shard the next run starts from
        ("rows_leased", 0),
        ("rows_written", 0),
        ("store_calls", 0),          # store subrequests (D1 batch calls / HTTP POSTs incl. retries)
        ("store_statements", 0),
        ("store_errors", 0),
        ("subrequests", 0),          # everything: outbox RPCs + store calls
        ("acked_deleted", 0),
        ("acked_kept", 0),           # newer versions that arrived during the flush
        ("ack_errors", 0),           # acks that failed: those rows come back after FLUSH_LEASE_MS
        ("elapsed_ms", 0),
    )

    def __init__(self, **values: Any) -> None:
        for name, default in self._DEFAULTS:
            setattr(self, name, values.pop(name, default))
        self.batches: list = list(values.pop("batches", []))
        if values:
            raise TypeError(f"FlushReport: unknown fields {sorted(values)}")

    def as_dict(self) -> dict:
        out = {name: getattr(self, name) for name, _ in self._DEFAULTS}
        out["batches"] = list(self.batches)
        return out

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FlushReport) and self.as_dict() == other.as_dict()

    def __repr__(self) -> str:
        return f"FlushReport({', '.join(f'{k}={v!r}' for k, v in self.as_dict().items())})"


class FlushConfig(NamedTuple):
    shards: int
    time_budget_ms: int
    subrequest_budget: int
    lease_ms: int
    batch_rows: int

    @classmethod
    def from_env(cls, env: Any, store: UsageStore) -> "FlushConfig":
        budget = flush_time_budget_ms(env)
        return cls(
            shards=outbox_shards(env),
            time_budget_ms=budget,
            subrequest_budget=flush_subrequest_budget(env),
            lease_ms=env_int(env, "FLUSH_LEASE_MS", budget * 3, minimum=1),
            batch_rows=min(env_int(env, "FLUSH_BATCH_ROWS", store.max_rows_per_call, minimum=1),
                           store.max_rows_per_call),
        )


class _Flush:
    def __init__(self, env: Any, store: UsageStore, cfg: FlushConfig) -> None:
        self.env, self.store, self.cfg = env, store, cfg
        self.report = FlushReport()
        self.started = clock.now_ms()
        self.slowest_write_ms = 0

    def _left_ms(self) -> int:
        return self.cfg.time_budget_ms - (clock.now_ms() - self.started)

    def _out_of_budget(self, need_subrequests: int) -> str | None:
        # Keep room for the writes and acks of what is already leased, and the bookkeeping at the end.
        if self.report.subrequests + need_subrequests + 3 > self.cfg.subrequest_budget:
            return "subrequests"
        if self._left_ms() < max(self.slowest_write_ms * 2, 200):
            return "time"
        return None

    def shard(self, index: int) -> Any:
        return self.env.OUTBOX.getByName(shard_name(index))

    async def run(self, cursor: int) -> FlushReport:
        cfg, rep = self.cfg, self.report
        order = [(cursor + i) % cfg.shards for i in range(cfg.shards)]
        held: list[tuple[int, str]] = []   # (shard, lease id) waiting for the store
        batch: list = []
        pos = 0
        rep.cursor = cursor
        while pos < len(order):
            reason = self._out_of_budget(len(held) + 2)
            if reason:
                rep.stopped = reason
                break
            index = order[pos]
            want = cfg.batch_rows - len(batch)
            leased = json.loads(await self.shard(index).lease(json.dumps({"limit": want, "lease_ms": cfg.lease_ms})))
            rep.subrequests += 1
            rows = decode_rows(json.dumps(leased["rows"]), f"shard {index} lease")
            if leased["lease"]:
                held.append((index, leased["lease"]))
                batch += rows
                rep.rows_leased += len(rows)
            if len(rows) < want:   # this shard has nothing more for now
                pos += 1
            if len(batch) >= cfg.batch_rows or (pos >= len(order) and batch):
                if not await self._commit(batch, held):
                    rep.stopped = "store"
                    break
                batch, held = [], []
                rep.cursor = order[pos] if pos < len(order) else cursor
        else:
            rep.complete = True
        if held:  # stopped with leases and no write: hand them back now
            await self._release(held)
        if rep.ack_errors:  # stored, but still in the outbox until their leases expire
            rep.complete, rep.stopped = False, rep.stopped or "ack"
        if not rep.complete:
            rep.cursor = order[pos] if pos < len(order) else cursor
        rep.elapsed_ms = clock.now_ms() - self.started
        return rep

    async def _commit(self, batch: list, held: list[tuple[int, str]]) -> bool:
        rep = self.report
        t0 = clock.now_ms()
        try:
            result = await self.store.write(batch, t0, self.started + self.cfg.time_budget_ms)
        except StoreError as exc:
            rep.store_errors += 1
            rep.store_calls += exc.subrequests
            rep.subrequests += exc.subrequests
            log.error("flush: store %s refused %d rows: %s", self.store.name, len(batch), exc)
            await self._release(held)
            return False
        self.slowest_write_ms = max(self.slowest_write_ms, clock.now_ms() - t0)
        rep.store_calls += result.subrequests
        rep.subrequests += result.subrequests
        rep.store_statements += result.statements
        rep.rows_written += result.rows
        rep.batches.append(len(batch))
        for index, lease_id in held:
            rep.subrequests += 1
            try:
                acked = json.loads(await self.shard(index).ack(lease_id))
            except Exception as exc:  # the rows are stored; the lease expires and they are re-sent, harmlessly
                rep.ack_errors += 1
                log.warning("flush: ack of shard %d lease failed: %s", index, exc)
                continue
            rep.acked_deleted += acked["deleted"]
            rep.acked_kept += acked["kept"]
        return True

    async def _release(self, held: list[tuple[int, str]]) -> None:
        for index, lease_id in held:
            try:
                await self.shard(index).release(lease_id)
            except Exception as exc:  # the lease expires by itself
                log.warning("flush: release of shard %d lease failed: %s", index, exc)
            self.report.subrequests += 1
        held.clear()


async def flush(env: Any, store: UsageStore | None = None) -> FlushReport:
    """One flush run; also records its outcome on the `metrics` outbox object."""
    store = store or open_store(env)
    cfg = FlushConfig.from_env(env, store)
    bookkeeping = env.OUTBOX.getByName(METRICS_OBJECT)
    gauges = json.loads(await bookkeeping.stats())["gauges"]
    job = _Flush(env, store, cfg)
    job.report.subrequests += 1
    report = await job.run(int(gauges.get("flush_cursor", 0)) % cfg.shards)
    now = clock.now_ms()
    updates = {"flush_cursor": report.cursor, "last_flush_ms": now}
    if report.complete:
        updates["last_flush_success_ms"] = now
    await bookkeeping.set_gauges(json.dumps(updates))
    for name, n in (("store_write_errors", report.store_errors), ("flushed_rows", report.rows_written),
                    ("flush_runs_incomplete", 0 if report.complete else 1)):
        if n:
            await bookkeeping.count(json.dumps({"name": name, "label": store.name, "n": n}))
    log.info("flush: %s", json.dumps({k: v for k, v in report.as_dict().items() if k != "batches"}))
    return report


async def run(env: Any, controller: Any = None, ctx: Any = None) -> Any:
    """Entry point for `Default.scheduled(controller, env, ctx)`: the flush, or on the retention
    cron (USAGE_RETENTION_CRON) the store's rollup and expiry (worker/stores/d1_retention.py)."""
    from worker.stores.d1_retention import retention_cron, runs_retention
    if runs_retention(env, controller):
        return await retention_cron(env)
    return await flush(env)
