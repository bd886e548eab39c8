"""Store retention (src/tollgate/retention.py, worker/stores/d1_retention.py): old hours become
days, old days go, in bounded idempotent steps; totals, reconciliation and restore still add up."""
from __future__ import annotations

import asyncio
import json
import random
from types import SimpleNamespace

import pytest

from scripts.reconcile import quota_windows
from scripts.reconcile_store import load_rows
from src.tollgate import clock, usage_table
from src.tollgate.retention import DAY_MS, retention_settings
from src.tollgate.snapshots import UsageRecord
from src.tollgate.usage import ACCOUNTING_PERIOD_MS
from tests.snapshots.fake_d1 import FakeD1
from worker.stores.d1_retention import run_retention

NOW = 1_800_000_000_000 - 1_800_000_000_000 % DAY_MS + 5 * ACCOUNTING_PERIOD_MS   # 05:00 UTC
ENV = SimpleNamespace(USAGE_ROLLUP_AFTER_DAYS="7", USAGE_RETENTION_DAYS="30", USAGE_RETENTION_ROWS_PER_STEP="40")


def fill(db: FakeD1, days: int = 40, clients: int = 5, seed: int = 3) -> list[UsageRecord]:
    """Hourly rows for `days` days before NOW, written as the flush writes them."""
    rng = random.Random(seed)
    recs = []
    for d in range(days):
        for c in range(clients):
            for h in rng.sample(range(24), 3):
                start = NOW - NOW % DAY_MS - (d + 1) * DAY_MS + h * ACCOUNTING_PERIOD_MS
                for rule in ("burst", "daily"):
                    recs.append(UsageRecord(f"c{c}", rule, start, rng.randrange(1, 9), rng.randrange(1, 20),
                                            rng.randrange(3), 0, d * 100 + h + 1))
    for i in range(0, len(recs), 50):
        sql, params = usage_table.upsert_statement(recs[i:i + 50], NOW)
        db.conn.execute(sql, params)
    return recs


def totals(db: FakeD1) -> dict:
    return {r["rule"]: (r["allowed"], r["admitted"], r["denied"]) for r in db.conn.execute("SELECT * FROM usage_totals")}


def retain(db, env=ENV, room=lambda: True):
    with clock.use(lambda: NOW):
        return asyncio.run(run_retention(db, env, room))


def test_hours_older_than_the_rollup_age_become_days_and_days_past_retention_go():
    db = FakeD1()
    recs = fill(db)
    before = totals(db)
    rep = retain(db)
    assert rep.complete and rep.error is None and rep.steps > 2          # 40 rows per step: many steps
    cut = NOW - NOW % DAY_MS - 7 * DAY_MS
    keep_from = NOW - NOW % DAY_MS - 30 * DAY_MS
    hourly = db.conn.execute("SELECT MIN(period_start) AS lo, COUNT(*) AS n FROM usage").fetchone()
    assert hourly["lo"] >= cut and hourly["n"] == sum(r.period_start_ms >= cut for r in recs)
    days = db.conn.execute("SELECT MIN(day_start) AS lo, MAX(day_start) AS hi, COUNT(*) AS n FROM usage_daily").fetchone()
    assert days["lo"] == keep_from and days["hi"] == cut - DAY_MS and days["n"] == 23 * 5 * 2
    # each day's row holds exactly its hours
    want = {}
    for r in recs:
        day = r.period_start_ms - r.period_start_ms % DAY_MS
        if keep_from <= day < cut:
            w = want.setdefault((r.client, r.rule, day), [0, 0, 0])
            w[0] += r.allowed
            w[1] += r.admitted
            w[2] += 1
    got = {(r["client"], r["rule"], r["day_start"]): [r["allowed"], r["admitted"], r["hours"]]
           for r in db.conn.execute("SELECT * FROM usage_daily")}
    assert got == want
    # the store's totals (tollgate_store_decisions_total) count everything ever decided: unchanged
    assert totals(db) == before
    again = retain(db)
    assert (again.rolled_hours, again.deleted_days, again.complete) == (0, 0, True)   # idempotent


def test_a_run_stopped_by_its_budget_leaves_no_half_step_and_the_next_run_finishes():
    db, reference = FakeD1(), FakeD1()
    fill(db), fill(reference)
    retain(reference)
    budget = iter([True] * 3 + [False])
    rep = retain(db, room=lambda: next(budget))
    assert not rep.complete and rep.steps == 3
    assert totals(db) == totals(reference)
    retain(db)
    for table in ("usage", "usage_daily"):
        q = f"SELECT * FROM {table} ORDER BY 1, 2, 3"
        strip = lambda rows: [tuple(r)[:-1] for r in rows]   # updated_at aside
        assert strip(db.conn.execute(q)) == strip(reference.conn.execute(q))


def test_a_store_that_fails_mid_run_changes_nothing_and_says_so():
    db = FakeD1()
    fill(db)
    rows_before = db.conn.execute("SELECT COUNT(*) FROM usage").fetchone()[0]
    db.down = True
    rep = retain(db)
    assert not rep.complete and "unavailable" in rep.error
    assert db.conn.execute("SELECT COUNT(*) FROM usage").fetchone()[0] == rows_before


def test_reconcile_reads_rolled_days_a_daily_quota_window_sums_the_same():
    db, reference = FakeD1(), FakeD1()
    fill(db, days=10), fill(reference, days=10)
    retain(db)
    rule = {"count": 100, "period_ms": DAY_MS, "shadow": False}

    def windows(conn):
        rows = [(rec, span) for rec, span in load_rows(conn, "c1") if rec.rule == "daily"]
        return quota_windows([r for r, _ in rows], rule, [s for _, s in rows])
    assert windows(db.conn) == windows(reference.conn)
    assert any(span == DAY_MS for _, span in load_rows(db.conn, "c1"))
    burst = {"count": 20, "period_ms": 1000, "shadow": False}          # a per-second rule: per day, scaled
    rows = [(rec, span) for rec, span in load_rows(db.conn, "c1") if rec.rule == "burst" and span == DAY_MS]
    [first] = quota_windows([rows[0][0]], burst, [rows[0][1]])
    assert first["window_ms"] == DAY_MS and first["quota"] == 20 * 86_400


def test_settings_say_what_is_wrong():
    with pytest.raises(ValueError, match="USAGE_RETENTION_DAYS .* must be above USAGE_ROLLUP_AFTER_DAYS"):
        retention_settings(SimpleNamespace(USAGE_ROLLUP_AFTER_DAYS="10", USAGE_RETENTION_DAYS="10"))
    with pytest.raises(ValueError, match="USAGE_ROLLUP_AFTER_DAYS: expected an integer >= 3"):
        retention_settings(SimpleNamespace(USAGE_ROLLUP_AFTER_DAYS="1"))
    assert retention_settings(SimpleNamespace()) == (7, 400, 5000)
    rep = retain(FakeD1(), env=SimpleNamespace(USAGE_RETENTION_DAYS="nope"))
    assert not rep.complete and "USAGE_RETENTION_DAYS" in rep.error
    assert json.dumps(rep.as_dict())


def test_the_cron_rolls_up_after_its_flush_on_the_local_runtime(tmp_path):
    from tests.snapshots.edge_support import edge

    async def main():
        async with edge(tmp_path) as e:
            db = e.d1("USAGE_DB")
            old = clock.now_ms() - 10 * DAY_MS
            old -= old % ACCOUNTING_PERIOD_MS
            sql, params = usage_table.upsert_statement(
                [UsageRecord("c", "daily", old + h * ACCOUNTING_PERIOD_MS, 2, 3, 0, 0, h + 1) for h in range(3)],
                clock.now_ms())
            await db.prepare(sql).bind(*params).run()
            report = await e.scheduled("17 3 * * *")
            return report, db.rows("SELECT allowed, admitted, hours FROM usage_daily"), db.rows("SELECT * FROM usage")
    controller, daily, hourly = asyncio.run(main())
    assert hourly == [] and sum(r["hours"] for r in daily) == 3 and sum(r["admitted"] for r in daily) == 9
