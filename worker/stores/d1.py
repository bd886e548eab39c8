"""Cloudflare D1 store (binding USAGE_DB): the cron flush's writes, one batch per call.

One `write` is one `db.batch([...])` call: a single subrequest holding many
multi-row upserts (SQL text from src/tollgate/usage_table.py, the table's one
owner), 100 statements per batch by default (5,000 rows per subrequest).
"""
from __future__ import annotations

from typing import Any, Sequence

from src.tollgate import usage_table
from src.tollgate.envvars import env_int
from src.tollgate.snapshots import UsageRecord, merge_highest_version
from src.tollgate.usage_table import ROWS_PER_STATEMENT, UsageRowError, upsert_statement
from worker.stores.base import StoreError, WriteResult


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
            try:
                sql, params = upsert_statement(rows[i:i + ROWS_PER_STATEMENT], now_ms)
            except UsageRowError as exc:  # the same batch would fail again: do not retry it
                raise StoreError(str(exc), permanent=True, subrequests=0) from None
            stmts.append(self.db.prepare(sql).bind(*params))
        try:
            await self.db.batch(stmts)  # one subrequest; D1 runs a batch as one transaction
        except Exception as exc:
            raise StoreError(f"D1 batch of {len(stmts)} statements failed: {exc}") from exc
        return WriteResult(len(rows), 1, len(stmts))

    async def totals(self) -> dict[str, dict[str, int]] | None:
        return usage_table.totals(await self.db.prepare(usage_table.TOTALS).all())

    async def recent_totals(self, since_ms: int) -> dict[str, dict[str, int]] | None:
        stmt = self.db.prepare(usage_table.RECENT_TOTALS).bind(int(since_ms))
        return usage_table.totals(await stmt.all())
