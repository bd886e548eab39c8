#!/usr/bin/env python3
"""scripts/bench edge: what each request costs at the edge, on the real code in virtual time.

N isolates (scripts/edge_sim.py) run the real Worker limiter (worker/limiter.py with its
deny cache) against real ClientBuckets (SQLite in memory), each isolate with its own RPC
round trip (1 to 150 ms), over traffic mixes. Per mix and mode it prints bucket calls per
request, rows written per request (every row the buckets wrote, checkpoints and the
alarm's push included), the worst over-admission against the exact limit over every window
of one period (GCRA rules: admitted - (burst + count)), under-admission against an exact
limiter that decides every request the moment it is sent, and the latency the decision
adds (p50/p99).

Modes: `no deny cache` is the Worker with its deny cache off (every request asks its
bucket); `strict` is the default (strict decisions, the deny cache always on). Leased budgets
(`mode = "lease"`) are not built yet (README, "Decide at the edge"): the last line says so.

    scripts/bench edge [--seconds 180] [--isolates 10] [--seed 1]

Last line: `edge: lease n/a (not built); flood <Z> bucket calls per isolate-minute`.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from scripts.edge_sim import Sim, worst_overshoot  # noqa: E402
from src.tollgate.config import parse_config  # noqa: E402
from src.tollgate.decision import decide  # noqa: E402
from src.tollgate.identity import Identity  # noqa: E402

ID = ["header:x-api-key"]
MIXES = {
    "steady": {"identity": ID, "rules": [
        {"name": "burst", "limit": "20/second", "burst": 40},
        {"name": "minute", "limit": "600/minute", "burst": 600}]},
    "hot 80% of 60,000/min": {"identity": ID, "rules": [{"name": "minute", "limit": "60000/minute", "burst": 60000}]},
    "zipf 10,000 clients": {"identity": ID, "rules": [
        {"name": "burst", "limit": "5/second", "burst": 10},
        {"name": "minute", "limit": "100/minute", "burst": 100}]},
    "bursty": {"identity": ID, "rules": [{"name": "burst", "limit": "10/second", "burst": 100}]},
    "flood, daily quota gone": {"identity": ID, "rules": [
        {"name": "daily", "limit": "5/day", "algorithm": "fixed_window"}]},
    "flood, per-second rule": {"identity": ID, "rules": [{"name": "second", "limit": "10/second", "burst": 10}]},
}


def traffic(mix: str, seconds: int, isolates: int, rng: random.Random) -> list[tuple[float, int, str, str]]:
    """(time ms, isolate, client, path) for one mix; isolates picked at random (a load balancer)."""
    span = seconds * 1000.0
    def at_rate(n: int, pick) -> list:
        return sorted((rng.uniform(0, span), rng.randrange(isolates), pick(i), "/v1/items") for i in range(n))
    if mix == "steady":
        return at_rate(100 * seconds, lambda i: f"c{i % 100}")                        # 100 clients at 1/s
    if mix.startswith("hot"):
        return at_rate(800 * seconds, lambda i: "hot")                                 # 800/s = 80% of 1,000/s
    if mix.startswith("zipf"):
        weights = [1 / (k + 1) for k in range(10_000)]
        names = rng.choices(range(10_000), weights, k=200 * seconds)
        return at_rate(200 * seconds, lambda i: f"z{names[i]}")
    if mix == "bursty":                                                                # 200 in 100 ms every 10 s
        return sorted((b * 10_000 + rng.uniform(0, 100), rng.randrange(isolates), "bursty", "/v1/items")
                      for b in range(max(1, seconds // 10)) for _ in range(200))
    if mix.startswith("flood, daily"):
        head = [(float(i), 0, "flood", "/v1/items") for i in range(5)]
        return head + at_rate(1000 * seconds, lambda i: "flood")[5:]
    return at_rate(1000 * seconds, lambda i: "flood")


def exact_admitted(tollgate: dict, requests: list) -> int:
    """What an exact limiter admits: every request decided the moment it is sent."""
    config = parse_config(tollgate)
    states: dict[str, dict] = {}
    admitted = 0
    for at, _, client, path in sorted(requests):
        rules = config.resolve(Identity("key", client), "GET", path).rules
        mine = states.setdefault(client, {})
        d = decide(rules, mine, 1, int(at))
        if d.allowed:
            admitted += 1
            mine.update(d.new_states)
    return admitted


def overshoot(tollgate: dict, results: list) -> float:
    """Worst over-admission, as a % of the limit, over GCRA rules and clients."""
    worst = 0.0
    for rule in parse_config(tollgate).rules:
        lim = rule.limit
        if lim.algorithm != "gcra":
            continue
        by_client: dict[str, list[float]] = {}
        for r in results:
            if r.allowed:
                by_client.setdefault(r.client, []).append(r.done_ms)
        for times in by_client.values():
            worst = max(worst, 100.0 * worst_overshoot(times, lim.count, lim.period_ms, lim.burst) / lim.count)
    return worst


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else 0.0


def run_mix(mix: str, seconds: int, isolates: int, seed: int, cache: bool) -> dict:
    rng = random.Random(seed)
    rtts = [1.0 + 149.0 * i / max(1, isolates - 1) for i in range(isolates)]      # 1 .. 150 ms
    requests = traffic(mix, seconds, isolates, rng)
    sim = Sim(MIXES[mix], rtts, deny_cache=cache)
    results = sim.run(requests)
    added = [r.done_ms - r.sent_ms for r in results]
    admitted = sum(r.allowed for r in results)
    exact = exact_admitted(MIXES[mix], requests)
    return {"requests": len(results), "calls": sim.calls, "rows": sim.rows_written(), "admitted": admitted,
            "exact": exact, "overshoot": overshoot(MIXES[mix], results),
            "p50": percentile(added, 0.5), "p99": percentile(added, 0.99), "sim": sim,
            "per_isolate_minute": sim.calls / isolates / (seconds / 60),
            "after_first_minute": (sum(1 for t in sim.call_times if t >= 60_000) / isolates / ((seconds - 60) / 60)
                                   if seconds > 60 else float("nan"))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=180)
    ap.add_argument("--isolates", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    started = time.perf_counter()
    print(f"Tollgate edge simulator: {args.isolates} isolates (RPC round trip 1..150 ms), {args.seconds} s of "
          f"virtual time per mix, seed {args.seed}\n")
    print("| mix | mode | requests | bucket calls / request | rows written / request | admitted (exact) "
          "| worst overshoot % of limit | added ms p50 / p99 |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    flood = None
    for mix in MIXES:
        for cache in (False, True):
            r = run_mix(mix, args.seconds, args.isolates, args.seed, cache)
            mode = "strict" if cache else "no deny cache"
            print(f"| {mix} | {mode} | {r['requests']:,} | {r['calls'] / r['requests']:.4f} | "
                  f"{r['rows'] / r['requests']:.4f} | {r['admitted']:,} ({r['exact']:,}) | {r['overshoot']:.2f} | "
                  f"{r['p50']:.1f} / {r['p99']:.1f} |")
            if cache and mix.startswith("flood, daily"):
                flood = r
    print(f"\n({time.perf_counter() - started:.1f} s of wall time)")
    print(f"flood, daily quota gone: {flood['per_isolate_minute']:.1f} bucket calls per isolate-minute over the "
          f"run, {flood['after_first_minute']:.2f} after the first minute (the first minute pays the requests "
          f"that arrived while each isolate's first call was out)")
    print(f"edge: lease n/a (not built); flood {flood['per_isolate_minute']:.1f} bucket calls per isolate-minute")


if __name__ == "__main__":
    main()
