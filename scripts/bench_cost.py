#!/usr/bin/env python3
"""scripts/bench cost: dollars per million gateway requests, per mode and traffic mix.

From counts measured on the real code (scripts/edge_sim.py, as `scripts/bench edge` runs
it): bucket calls, the buckets' rows written (setAlarm included), alarm invocations, the
outbox pushes and the usage records they carry; CPU per request from `scripts/bench
workerd` (README); prices from scripts/cloudflare_prices.json (their date and sources).
Marginal prices: free allowances are per account, not per request, and left out.

Per million gateway requests:
  Worker        requests x $0.30/M + CPU ms x $0.02/M ms
  Durable Obj.  (bucket calls + alarm invocations + outbox puts) x $0.15/M
                + rows written (buckets; the outbox's 3 per record: seen, entry, totals) x $1.00/M
  D1            at most one row per usage record pushed x $1.00/M (the flush upserts each once)
Not counted: Durable Object duration (no active wall time per call is measured here),
rows read ($0.001/M), the flush's own outbox lease/ack rows.

    scripts/bench cost [--seconds 60] [--isolates 10] [--seed 1]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.bench_edge import MIXES, MODES, run_mix  # noqa: E402

OUTBOX_ROWS_PER_RECORD = 3     # durable_objects/outbox.py SnapshotOutbox._upsert: seen, entry, totals


def cost(r: dict, prices: dict) -> dict[str, float]:
    """Dollars per million gateway requests for one measured run."""
    usd, cpu = prices["usd_per_million"], prices["cpu_ms_per_request"]
    sim, n = r["sim"], r["requests"]
    local = n - r["calls"]
    worker = usd["worker_request"] + usd["worker_cpu_ms"] * (
        r["calls"] * cpu["decided_by_bucket"] + local * cpu["answered_by_isolate"]) / n
    do_requests = r["calls"] + sim.alarms_fired + sim.buckets.outbox.puts
    do_rows = r["rows"] + OUTBOX_ROWS_PER_RECORD * sim.buckets.outbox.records
    durable = (usd["do_request"] * do_requests + usd["do_row_written"] * do_rows) / n
    d1 = usd["d1_row_written"] * sim.buckets.outbox.records / n
    return {"worker": worker, "durable": durable, "d1": d1, "total": worker + durable + d1}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--isolates", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    prices = json.loads((ROOT / "scripts" / "cloudflare_prices.json").read_text())
    print(f"Tollgate cost per million gateway requests (USD), prices read {prices['read']}, "
          f"{args.isolates} isolates, {args.seconds} s of virtual time per mix, seed {args.seed}\n")
    print("| mix | mode | Worker | Durable Objects | D1 | total |")
    print("|---|---|---:|---:|---:|---:|")
    totals = {}
    for mix in MIXES:
        for mode, cache, lease in MODES:
            r = run_mix(mix, args.seconds, args.isolates, args.seed, cache, lease)
            c = cost(r, prices)
            totals[(mix, mode)] = c["total"]
            print(f"| {mix} | {mode} | {c['worker']:.3f} | {c['durable']:.3f} | {c['d1']:.3f} | {c['total']:.3f} |")
    flood = [m for m in MIXES if m.startswith("flood, daily")][0]
    before, after = totals[(flood, "no deny cache")], totals[(flood, "strict")]
    hot = "hot 80% of 60,000/min"
    print(f"\ncost: the hot client ${totals[(hot, 'lease')]:.3f} per million requests in lease mode, "
          f"${totals[(hot, 'strict')]:.3f} strict")
    print(f"cost: a flood on an exhausted quota ${after:.3f} per million requests (${before:.3f} before the deny cache)")


if __name__ == "__main__":
    main()
