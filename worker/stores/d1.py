"""Cloudflare D1 store (binding USAGE_DB, schema in migrations/).

One `write` is one `db.batch([...])` call: a single subrequest holding many
multi-row upserts. D1 allows 100 bound parameters per statement, so only the
two strings of a row (client, rule) are bound and the integers, validated as
int, are written as literals: 50 rows per statement, 100 statements per batch
by default (5,000 rows per subrequest). `WHERE excluded.version > usage.version`
keeps the highest version, making a replayed batch a no-op.
"""
from __future__ import annotations

from typing import Any, Sequence

from src.tollgate.envvars import env_int
from durable_objects.sql import d1_all
from src.tollgate.snapshots import COUNTERS, UsageRecord, merge_highest_version
from worker.stores.base import StoreError, WriteResult

MAX_BOUND_PARAMETERS = 100  # D1 limit per statement (developers.cloudflare.com/d1/platform/limits)
ROWS_PER_STATEMENT = MAX_BOUND_PARAMETERS // 2

_HEAD = ("INSERT INTO usage (client, rule, period_start, allowed, admitted, denied, shadow_denied, version, "
         "updated_at) VALUES ")
_TAIL = (" ON CONFLICT (client, rule, period_start) DO UPDATE SET allowed = excluded.allowed, "
         "admitted = excluded.admitted, denied = excluded.denied, shadow_denied = excluded.shadow_denied, "
         "version = excluded.version, updated_at = excluded.updated_at WHERE excluded.version > usage.version")


def _lit(value: int) -> str:
    if not isinstance(value, int) or isinstance(value, bool):
        raise StoreError(f"refusing a non-integer value {value!r} in a usage row", permanent=True, subrequests=0)
    return str(int(value))


def upsert_statement(records: Sequence[UsageRecord], now_ms: int) -> tuple[str, list[str]]:
    """One multi-row upsert: SQL text and its bound parameters (2 per row)."""
    if len(records) > ROWS_PER_STATEMENT:
        raise ValueError(f"at most {ROWS_PER_STATEMENT} rows per statement, got {len(records)}")
    values, params = [], []
    for r in records:
        nums = ",".join(_lit(v) for v in (r.period_start_ms, r.allowed, r.admitted, r.denied, r.shadow_denied,
                                          r.version, now_ms))
        values.append(f"(?,?,{nums})")
        params += [r.client, r.rule]
    return _HEAD + ",".join(values) + _TAIL, params


class D1Store:
    name = "d1"

    def __init__(self, db: Any, statements_per_batch: int = 100) -> None:
        self.db = db
        self.statements_per_batch = statements_per_batch
        self.max_rows_per_call = ROWS_PER_STATEMENT * statements_per_batch

    @classmethod
    def from_env(cls, env: Any) -> "D1Store":
        db = getattr(env, "USAGE_DB", None)
        if db is None:
            raise ValueError("SNAPSHOT_STORE=d1 needs a D1 binding named USAGE_DB in wrangler.toml")
        return cls(db, env_int(env, "D1_STATEMENTS_PER_BATCH", 100, minimum=1))

    async def write(self, records: Sequence[UsageRecord], now_ms: int,
                    deadline_ms: int | None = None) -> WriteResult:
        rows = merge_highest_version(records)
        if not rows:
            return WriteResult(0, 0, 0)
        if len(rows) > self.max_rows_per_call:
            raise ValueError(f"at most {self.max_rows_per_call} rows per write, got {len(rows)}")
        stmts = []
        for i in range(0, len(rows), ROWS_PER_STATEMENT):
            sql, params = upsert_statement(rows[i:i + ROWS_PER_STATEMENT], now_ms)
            stmts.append(self.db.prepare(sql).bind(*params))
        try:
            await self.db.batch(stmts)  # one subrequest; D1 runs a batch as one transaction
        except Exception as exc:
            raise StoreError(f"D1 batch of {len(stmts)} statements failed: {exc}") from exc
        return WriteResult(len(rows), 1, len(stmts))

    async def totals(self) -> dict[str, dict[str, int]] | None:
        rows = await d1_all(self.db, "SELECT rule, allowed, admitted, denied, shadow_denied FROM usage_totals "
                                     "ORDER BY rule")
        return {r["rule"]: {c: int(r[c]) for c in COUNTERS} for r in rows}
