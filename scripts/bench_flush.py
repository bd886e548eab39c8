#!/usr/bin/env python3
"""scripts/bench flush: N dirty clients flushed through the local runtime into D1 on SQLite.

Fills the SnapshotOutbox shards with one usage record per client and rule (what
every bucket's alarm would have pushed; sent here in bulk `put` calls so the
fill does not dominate), then runs the cron flush (`worker.scheduled.flush`,
what `Default.scheduled` runs) until the outbox is empty, and prints per run:
wall time, store subrequests (D1 batch calls, counted by the runtime's D1
binding), statements, rows written, outbox RPCs.

    scripts/bench flush [--clients 100000] [--rules 1] [--shards 16] [--batch-rows N] [--json]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from src.localedge import sdk  # noqa: E402

sdk.install()

from src.localedge.derived import derived_config, toml_value  # noqa: E402
from src.tollgate.snapshots import UsageRecord, encode_rows, shard_for, shard_name  # noqa: E402

RULE_NAMES = ("burst", "minute", "daily")
# The flush reads no rule, but the Worker module must load: a config that limits something.
TOLLGATE = {"identity": ["header:x-api-key"], "rules": [{"name": "daily", "limit": "1000/day"}]}
SECRETS = {"IDENTITY_SECRET": "bench-secret"}


def bench_config(folder: Path, vars: dict) -> Path:
    """The repo's bindings (src/localedge/derived.py) plus its D1 databases from wrangler.toml,
    migrations_dir made absolute: the runtime applies migrations/ at start, as wrangler does."""
    path = derived_config(folder, {**vars, "TOLLGATE": TOLLGATE}, SECRETS, name="tollgate-bench-flush")
    repo = tomllib.loads((ROOT / "wrangler.toml").read_text())
    with path.open("a") as f:
        for db in repo.get("d1_databases", []):
            db = {**db, "migrations_dir": str(ROOT / db.get("migrations_dir", "migrations"))}
            f.write("\n[[d1_databases]]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in db.items()))
    return path


async def bench(args: argparse.Namespace, work: Path) -> dict:
    from src.localedge import LocalEdge
    from worker.scheduled import flush

    vars = {"OUTBOX_SHARDS": str(args.shards), "FLUSH_TIME_BUDGET_MS": str(args.time_budget_ms)}
    if args.batch_rows:
        vars["FLUSH_BATCH_ROWS"] = str(args.batch_rows)
    config = bench_config(work / "cfg", vars)
    edge = LocalEdge(config, work / "state", port=0, build=False, crons=False)
    await edge.start()
    try:
        env, db = edge.env, edge.d1("USAGE_DB")
        period = int(time.time() * 1000) // 3_600_000 * 3_600_000
        by_shard: dict[int, list[UsageRecord]] = {}
        for i in range(args.clients):
            client = f"{i:08x}" * 8  # the shape of a keyed client hash (64 hex digits)
            for rule in RULE_NAMES[:args.rules]:
                by_shard.setdefault(shard_for(client, args.shards), []).append(
                    UsageRecord(client, rule, period, 1 + i % 7, 1 + i % 11, i % 3, 0, 1 + i % 5))
        t0 = time.perf_counter()
        for index, records in by_shard.items():
            shard = env.OUTBOX.getByName(shard_name(index))
            for j in range(0, len(records), 2000):
                await shard.put(encode_rows(records[j:j + 2000]))
        fill_s = time.perf_counter() - t0
        expected_rows = sum(len(r) for r in by_shard.values())
        runs = []
        while True:
            before = db.subrequests
            t = time.perf_counter()
            rep = await flush(env)
            runs.append({"wall_s": round(time.perf_counter() - t, 3), "store_subrequests": db.subrequests - before,
                         "store_calls_reported": rep.store_calls, "statements": rep.store_statements,
                         "rows_written": rep.rows_written, "subrequests_total": rep.subrequests,
                         "complete": rep.complete, "stopped": rep.stopped})
            if rep.complete or len(runs) >= 20:
                break
        stored = db.rows("SELECT COUNT(*) AS n FROM usage")[0]["n"]
        return {"clients": args.clients, "rules": args.rules, "shards": args.shards, "rows": expected_rows,
                "fill_s": round(fill_s, 2), "runs": runs, "rows_in_store": stored,
                "total_wall_s": round(sum(r["wall_s"] for r in runs), 3),
                "total_store_subrequests": sum(r["store_subrequests"] for r in runs)}
    finally:
        await edge.stop()


def main() -> int:
    ap = argparse.ArgumentParser(prog="scripts/bench flush", description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=100_000)
    ap.add_argument("--rules", type=int, default=1, choices=(1, 2, 3), help="usage rows per client")
    ap.add_argument("--shards", type=int, default=16)
    ap.add_argument("--batch-rows", type=int, default=0, help="FLUSH_BATCH_ROWS (default: the store's 5,000)")
    ap.add_argument("--time-budget-ms", type=int, default=20_000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="tollgate-bench-flush-") as tmp:
        result = asyncio.run(bench(args, Path(tmp)))
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print(f"flush of {result['clients']:,} dirty clients x {result['rules']} rule(s) = {result['rows']:,} usage rows, "
          f"{result['shards']} outbox shards, D1 on SQLite (local runtime)")
    print(f"  outbox fill (bulk put, not measured below): {result['fill_s']} s")
    for i, r in enumerate(result["runs"], 1):
        print(f"  run {i}: {r['wall_s']:.2f} s wall, {r['store_subrequests']} store subrequests (D1 batch calls), "
              f"{r['statements']} statements, {r['rows_written']:,} rows written, "
              f"{r['subrequests_total']} subrequests in all, "
              + ("complete" if r["complete"] else f"stopped: {r['stopped']} (next run continues)"))
    print(f"  total: {result['total_wall_s']:.2f} s, {result['total_store_subrequests']} store subrequests, "
          f"{result['rows_in_store']:,} rows in the store")
    return 0 if result["rows_in_store"] == result["rows"] else 1


if __name__ == "__main__":
    sys.exit(main())
