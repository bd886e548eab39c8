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
bucket); `strict` is the default (strict decisions, the deny cache always on); `lease` puts
every rule of the mix that can be leased at the default 1 % (`mode = "lease"`, src/tollgate/lease.py)
in lease mode, the rest stays strict. "usage" is what the buckets counted as admitted after
every isolate reported its leases, against what was admitted: they must be equal.

    scripts/bench edge [--seconds 180] [--isolates 10] [--seed 1] [--only MIX,...]

Last line: `edge: lease <X>% fewer bucket calls, <Y>% worst overshoot; flood <Z> bucket calls
per isolate-minute` (X: the hot client's lease run against its strict run; Y: the worst over
every lease run, as a % of the limit).
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
from src.tollgate.lease import DEFAULT_MAX_OVERSHOOT, unleasable  # noqa: E402

ID = ["header:x-api-key"]
MIXES = {
    "steady": {"identity": ID, "rules": [
        {"name": "burst", "limit": "20/second", "burst": 40},
        {"name": "minute", "limit": "600/minute", "burst": 600}]},
    "hot 80% of 60,000/min": {"identity": ID, "rules": [{"name": "minute", "limit": "60000/minute", "burst": 60000}]},
    "hot 5,000/s, 6,000/s limit": {"identity": ID, "rules": [
        {"name": "minute", "limit": "360000/minute", "burst": 6000}]},
    "hot 5,000/s, 3,000/s limit": {"identity": ID, "rules": [
        {"name": "minute", "limit": "180000/minute", "burst": 3000}]},
    "cold 3/min, 100 clients": {"identity": ID, "rules": [{"name": "minute", "limit": "600/minute", "burst": 600}]},
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
    def at_rate(n: int, pick, within: float = span) -> list:
        return sorted((rng.uniform(0, within), rng.randrange(isolates), pick(i), "/v1/items") for i in range(n))
    if mix == "steady":
        return at_rate(100 * seconds, lambda i: f"c{i % 100}")                        # 100 clients at 1/s
    if mix.startswith("hot 80"):
        return at_rate(800 * seconds, lambda i: "hot")                                 # 800/s = 80% of 1,000/s
    if mix.startswith("hot 5"):                                                       # 5x a DO's ~1,000/s
        return at_rate(5000 * min(seconds, 20), lambda i: "hot", 1000.0 * min(seconds, 20))   # 20 s at most
    if mix.startswith("cold"):
        return at_rate(5 * seconds, lambda i: f"c{i % 100}")                          # 3 a minute each
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


def leased(tollgate: dict) -> dict:
    """The mix with every rule that can be leased at the default bound in lease mode."""
    config = parse_config(tollgate)
    rules = [dict(raw, mode="lease") if unleasable(rule.limit, DEFAULT_MAX_OVERSHOOT) is None else raw
             for raw, rule in zip(tollgate["rules"], config.rules)]
    return dict(tollgate, rules=rules)


MODES = (("no deny cache", False, False), ("strict", True, False), ("lease", True, True))


def run_mix(mix: str, seconds: int, isolates: int, seed: int, cache: bool, lease: bool = False) -> dict:
    rng = random.Random(seed)
    rtts = [1.0 + 149.0 * i / max(1, isolates - 1) for i in range(isolates)]      # 1 .. 150 ms
    requests = traffic(mix, seconds, isolates, rng)
    tollgate = leased(MIXES[mix]) if lease else MIXES[mix]
    sim = Sim(tollgate, rtts, deny_cache=cache)
    results = sim.run(requests)
    sim.report_leases()
    added = [r.done_ms - r.sent_ms for r in results]
    admitted = sum(r.allowed for r in results)
    exact = exact_admitted(MIXES[mix], requests)
    span = max(1.0, max(r.sent_ms for r in results) / 1000) if results else 1.0
    return {"requests": len(results), "calls": sim.calls, "rows": sim.rows_written(), "admitted": admitted,
            "exact": exact, "overshoot": overshoot(MIXES[mix], results), "usage": sim.usage_admitted(),
            "p50": percentile(added, 0.5), "p99": percentile(added, 0.99), "sim": sim,
            "no_round_trip": sum(1 for a in added if a == 0) / max(1, len(added)),
            "calls_per_s": sim.calls / span,
            "per_isolate_minute": sim.calls / isolates / (seconds / 60),
            "after_first_minute": (sum(1 for t in sim.call_times if t >= 60_000) / isolates / ((seconds - 60) / 60)
                                   if seconds > 60 else float("nan"))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=180)
    ap.add_argument("--isolates", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", default="", help="comma-separated mix names (prefixes) to run")
    args = ap.parse_args()
    started = time.perf_counter()
    print(f"Tollgate edge simulator: {args.isolates} isolates (RPC round trip 1..150 ms), {args.seconds} s of "
          f"virtual time per mix, seed {args.seed}\n")
    print("| mix | mode | requests | bucket calls / request | rows written / request | admitted (exact) "
          "| worst overshoot % of limit | added ms p50 / p99 | no round trip | usage = admitted |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    runs = {}
    wanted = [w.strip() for w in args.only.split(",") if w.strip()]
    for mix in MIXES:
        if wanted and not any(mix.startswith(w) for w in wanted):
            continue
        for mode, cache, lease in MODES:
            r = runs[(mix, mode)] = run_mix(mix, args.seconds, args.isolates, args.seed, cache, lease)
            usage = "yes" if r["usage"] == r["admitted"] else f"no: {r['usage']:,}"
            print(f"| {mix} | {mode} | {r['requests']:,} | {r['calls'] / r['requests']:.4f} | "
                  f"{r['rows'] / r['requests']:.4f} | {r['admitted']:,} ({r['exact']:,}) | {r['overshoot']:.2f} | "
                  f"{r['p50']:.1f} / {r['p99']:.1f} | {r['no_round_trip']:.1%} | "
                  f"{usage} |")
    print(f"\n({time.perf_counter() - started:.1f} s of wall time)")
    summary(runs)


def summary(runs: dict) -> None:
    flood = runs.get(("flood, daily quota gone", "strict"))
    hot = [runs.get((m, k)) for m in ("hot 80% of 60,000/min",) for k in ("strict", "lease")]
    for mix in ("hot 5,000/s, 6,000/s limit", "hot 5,000/s, 3,000/s limit"):
        big = runs.get((mix, "lease"))
        if big is not None:
            print(f"{mix}, lease: the bucket takes {big['calls_per_s']:.0f} calls/s (a Durable Object's soft "
                  f"limit is about 1,000/s); admitted {big['admitted']:,} against {big['exact']:,} exact")
    fewer = (f"{100 * (1 - hot[1]['calls'] / hot[0]['calls']):.1f}% fewer bucket calls"
             if all(hot) else "n/a fewer bucket calls")
    worst = max((r["overshoot"] for (m, k), r in runs.items() if k == "lease"), default=float("nan"))
    if flood is None:
        print(f"edge: lease {fewer}, {worst:.2f}% worst overshoot; flood n/a bucket calls per isolate-minute")
        return
    print(f"flood, daily quota gone: {flood['per_isolate_minute']:.1f} bucket calls per isolate-minute over the "
          f"run, {flood['after_first_minute']:.2f} after the first minute (the first minute pays the requests "
          f"that arrived while each isolate's first call was out)")
    print(f"edge: lease {fewer}, {worst:.2f}% worst overshoot; flood {flood['per_isolate_minute']:.1f} bucket "
          f"calls per isolate-minute")


if __name__ == "__main__":
    main()
