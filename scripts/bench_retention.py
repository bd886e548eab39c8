#!/usr/bin/env python3
"""scripts/bench retention: the D1 store's size over a simulated year of usage.

The store is a SQLite file with migrations/ applied (what D1 runs). Each simulated
day, every one of N clients is active in H random hours, each counted under the
repo's three rules: the hourly rows the flush would write that day (inserted
directly, the flush itself is `scripts/bench flush`). Then the daily retention
cron runs, with the very statements and step loop the Worker uses
(worker/stores/d1_retention.py; USAGE_ROLLUP_AFTER_DAYS / USAGE_RETENTION_DAYS
as given). Printed on the checkpoint days: hourly rows, daily rows, the live
size of the file (pages in use x page size), and the seconds the day's
retention took here.

    scripts/bench retention [--clients 10000] [--hours 6] [--days 365] [--rollup-after 7] [--keep 400]
                            [--no-retention] [--json]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from src.tollgate import clock  # noqa: E402
from src.tollgate.retention import DAY_MS  # noqa: E402
from src.tollgate.usage import ACCOUNTING_PERIOD_MS  # noqa: E402
from worker.stores.d1_retention import run_retention  # noqa: E402

RULES = ("burst", "search", "daily")
START_MS = 1_800_000_000_000 - 1_800_000_000_000 % DAY_MS
CHECKPOINTS = (1, 7, 8, 30, 90, 180, 365, 400, 401, 730)


class SqliteD1:
    """Just enough of a D1 binding over sqlite3 for the retention loop: prepare/bind/batch."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def prepare(self, sql: str) -> "SqliteD1":
        return _Stmt(self.conn, sql)

    async def batch(self, stmts: list) -> list[dict]:
        with self.conn:
            return [{"meta": {"changes": self.conn.execute(s.sql, s.args).rowcount}} for s in stmts]


class _Stmt:
    def __init__(self, conn: sqlite3.Connection, sql: str, args: tuple = ()) -> None:
        self.conn, self.sql, self.args = conn, sql, args

    def bind(self, *args) -> "_Stmt":
        return _Stmt(self.conn, self.sql, args)


def open_store(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    for migration in sorted((ROOT / "migrations").glob("*.sql")):
        conn.executescript(migration.read_text())
    return conn


def live_bytes(conn: sqlite3.Connection) -> int:
    pages = conn.execute("PRAGMA page_count").fetchone()[0] - conn.execute("PRAGMA freelist_count").fetchone()[0]
    return pages * conn.execute("PRAGMA page_size").fetchone()[0]


def one_day(conn: sqlite3.Connection, day: int, clients: int, hours: int, rng: random.Random) -> None:
    start = START_MS + day * DAY_MS
    rows = []
    for c in range(clients):
        for h in rng.sample(range(24), hours):
            at = start + h * ACCOUNTING_PERIOD_MS
            n = rng.randrange(1, 200)
            for rule in RULES:
                rows.append((f"{c:064x}", rule, at, n, n, 0, 0, day * 24 + h + 1, at))
    with conn:
        conn.executemany("INSERT INTO usage (client, rule, period_start, allowed, admitted, denied, shadow_denied, "
                         "version, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def simulate(path: Path, args: argparse.Namespace) -> dict:
    conn = open_store(path)
    db, rng = SqliteD1(conn), random.Random(7)
    env = SimpleNamespace(USAGE_ROLLUP_AFTER_DAYS=str(args.rollup_after), USAGE_RETENTION_DAYS=str(args.keep))
    out = []
    for day in range(args.days):
        one_day(conn, day, args.clients, args.hours, rng)
        t0 = time.monotonic()
        steps = 0
        if not args.no_retention:
            with clock.use(lambda: START_MS + (day + 1) * DAY_MS + 3 * ACCOUNTING_PERIOD_MS):   # the 03:17 cron
                rep = asyncio.run(run_retention(db, env, lambda: True))
            assert rep.complete, rep.as_dict()
            steps = rep.steps
        if day + 1 in CHECKPOINTS or day + 1 == args.days:
            count = lambda t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
            out.append({"day": day + 1, "hourly_rows": count("usage"), "daily_rows": count("usage_daily"),
                        "live_mb": round(live_bytes(conn) / 1e6, 1), "retention_s": round(time.monotonic() - t0, 2),
                        "retention_steps": steps})
            print(json.dumps(out[-1]), file=sys.stderr)
    conn.close()
    return {"clients": args.clients, "hours_per_day": args.hours, "rules": len(RULES),
            "rollup_after_days": args.rollup_after, "retention_days": args.keep,
            "retention": not args.no_retention, "checkpoints": out}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=10_000)
    ap.add_argument("--hours", type=int, default=6, help="active hours per client and day")
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--rollup-after", type=int, default=7)
    ap.add_argument("--keep", type=int, default=400)
    ap.add_argument("--no-retention", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="tollgate-retention-") as tmp:
        report = simulate(Path(tmp) / "usage.sqlite", args)
    print(json.dumps(report) if args.json else "\n".join(
        " ".join(f"{k}={v}" for k, v in c.items()) for c in report["checkpoints"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
