#!/usr/bin/env python3
"""scripts/bench lifecycle: N one-off clients through the local runtime in virtual time.

Each client makes 1-3 requests at one random moment of the first day (the repo's
rules: burst, search, a daily quota), then never comes back. Time is virtual
(`ManualClock` drives the alarms, `clock.use` the Durable Objects and the flush): every
5 minutes the due alarms fire (pushes, cleanups) and the cron flush runs, as on
Cloudflare. At the end of each day it counts what is left: bucket objects that still
hold storage, their rows, outbox rows, D1 usage rows, and checks the store's totals
against what the buckets admitted (nothing lost, nothing counted twice).

    scripts/bench lifecycle [--clients 10000] [--days 2] [--no-cleanup] [--json]
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from src.localedge import sdk  # noqa: E402

sdk.install()

from scripts.bench_flush import bench_config  # noqa: E402

DAY_MS = 86_400_000
STEP_MS = 300_000                       # the cron interval of wrangler.toml
START_MS = 1_800_000_000_000 - 1_800_000_000_000 % DAY_MS   # a UTC midnight
TOLLGATE = {"identity": ["header:x-api-key"], "rules": [
    {"name": "burst", "limit": "20/second", "burst": 40},
    {"name": "search", "limit": "100/minute", "algorithm": "sliding_window"},
    {"name": "daily", "limit": "10000/day", "algorithm": "fixed_window", "shadow": True},
]}


def storage_left(state: Path) -> dict:
    """Bucket objects whose SQLite still holds a table or a row, and their rows."""
    objects = rows = files = 0
    for path in (state / "do" / "ClientBucket").glob("*.sqlite"):
        files += 1
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        n = sum(db.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables)
        db.close()
        if [t for t in tables if t != "_cf_KV"] or n:
            objects += 1
            rows += n
    return {"bucket_objects_with_storage": objects, "bucket_rows": rows, "bucket_files": files}


async def outbox_rows(env) -> dict:
    out = {"outbox_entries": 0}
    for i in range(16):
        out["outbox_entries"] += json.loads(await env.OUTBOX.getByName(f"shard-{i}").stats())["depth"]
    return out


def _arrivals(clients: int, seed: int) -> dict[int, list[tuple[str, int]]]:
    rng = random.Random(seed)
    by_step: dict[int, list[tuple[str, int]]] = {}
    for i in range(clients):
        at = rng.randrange(DAY_MS)
        by_step.setdefault(at // STEP_MS, []).append((f"oneoff-{i:06d}-{rng.getrandbits(48):012x}",
                                                     rng.choice((1, 1, 2, 3))))
    return by_step


async def simulate(work: Path, clients: int, days: int, cleanup: bool = True, seed: int = 1) -> dict:
    from src.localedge import LocalEdge
    from src.localedge.durable.alarms import ManualClock
    from src.tollgate import clock
    from src.tollgate.config import parse_config
    from src.tollgate.wire import decode_decision, encode_decide

    manual = ManualClock(START_MS)
    vars = {"OUTBOX_SHARDS": "16", "IDLE_CLEANUP": "true" if cleanup else "false"}
    edge = LocalEdge(bench_config(work / "cfg", vars), work / "state", port=0, build=False, crons=False,
                     alarm_clock=manual, vars={"TOLLGATE": TOLLGATE})
    rules = tuple(parse_config(TOLLGATE).rules)
    payload = encode_decide(rules, 1)
    admitted = 0
    report: dict = {"clients": clients, "cleanup": cleanup, "days": []}
    started = time.monotonic()
    with clock.use(manual.now_ms):
        await edge.start()
        try:
            arrivals = _arrivals(clients, seed)
            for step in range(days * DAY_MS // STEP_MS):
                for client, n in arrivals.get(step, ()):
                    for _ in range(n):
                        d = decode_decision(await edge.env.BUCKETS.getByName(client).decide(payload))
                        admitted += d.allowed
                await edge.alarms.advance(STEP_MS)
                await edge.scheduled("*/5 * * * *")
                if (step + 1) % (DAY_MS // STEP_MS) == 0:
                    db = edge.d1("USAGE_DB")
                    stored = db.rows("SELECT COUNT(*) AS n, SUM(allowed) AS a FROM usage WHERE rule = 'burst'")[0]
                    day = {"day": (step + 1) * STEP_MS // DAY_MS, **storage_left(work / "state"),
                           **await outbox_rows(edge.env),
                           "d1_usage_rows": db.rows("SELECT COUNT(*) AS n FROM usage")[0]["n"],
                           "store_admitted_burst": stored["a"] or 0, "admitted": admitted,
                           "pending_alarms": len(edge.alarms.pending())}
                    report["days"].append(day)
        finally:
            await edge.stop()
    report["wall_s"] = round(time.monotonic() - started, 1)
    return report


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=10_000)
    ap.add_argument("--days", type=int, default=2)
    ap.add_argument("--no-cleanup", action="store_true", help="IDLE_CLEANUP=false, for comparison")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="tollgate-lifecycle-") as tmp:
        report = asyncio.run(simulate(Path(tmp), args.clients, args.days, not args.no_cleanup))
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"# {args.clients} one-off clients over day 1, IDLE_CLEANUP={'false' if args.no_cleanup else 'true'}")
    for day in report["days"]:
        print(" ".join(f"{k}={v}" for k, v in day.items()))
    print(f"# wall {report['wall_s']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
