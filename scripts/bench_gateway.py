#!/usr/bin/env python3
"""scripts/bench gateway: the gateway's cost, measured over real HTTP in one run.

Three targets, each loaded from another process (wrk if installed, else a
small aiohttp load generator in a subprocess; the output says which):

  origin direct   GET <origin>/v1/items                       the baseline
  gateway         GET <edge>/v1/items   → decision → origin   the Worker in front of it
  /allow          GET <edge>/__tollgate/allow/v1/items        the decision alone (no origin)
  gateway, slot   GET <edge>/c/items: a concurrency rule in place of the sliding window (a slot taken, released)

The local runtime (`python -m src.localedge`, one process) serves the repo's
Worker with three rules per request (GCRA burst, sliding window, daily fixed
window: the shape of the shipped sample), Durable Object state in SQLite
files on disk, and requests spread over --clients API keys (one Durable
Object each). The origin is a minimal aiohttp app in its own process.

Each target gets a throughput run (--connections concurrent connections)
and a latency run (one connection: p50/p99 without queueing). "Gateway adds"
is the gateway's p50 minus the direct origin's p50 on one connection.

    scripts/bench gateway [--duration 10] [--connections 32] [--clients 100] [--rounds 1]
                          [--generator auto|wrk|aiohttp] [--profile] [--against REV]

On a shared machine other processes steal CPU: --rounds N keeps each target's
best round, and the load average is printed beside the figures.

--against REV also serves another commit's Worker on its own local runtime (a
throwaway `git worktree` of REV, as `scripts/bench workerd --against` does) and
measures its gateway and /allow in the same rounds, interleaved with this
checkout's: an A/B on one machine state. The per-round figures of both are
printed as median (min-max) over the rounds.

--profile runs the runtime under cProfile and prints where its time went.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import platform
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from scripts.bench_load import Generator, start_origin, stop  # noqa: E402
from src.localedge.derived import derived_config  # noqa: E402
PY = sys.executable
GOAL_ALLOW_RPS = 2000
GOAL_ADDED_P50_MS = 1.0
ORIGIN, GATEWAY, ALLOW, SLOT = "origin direct", "gateway → origin", "/__tollgate/allow", "gateway, slot"

# The repo's bindings (src/localedge/derived.py) with limits no client reaches: every request
# is admitted, so each one costs a full decision and a forward.
BENCH_VARS = {
    "SNAPSHOT_DELAY_MS": "60000",
    "TOLLGATE": {
        "identity": ["header:x-api-key", "bearer", "ip"],
        "rules": [
            {"name": "burst", "limit": "100000/second", "burst": 100000},
            {"name": "per-minute", "limit": "10000000/minute", "algorithm": "sliding_window",
             "match": {"paths": ["/v1/*"]}},
            {"name": "daily", "limit": "1000000000/day", "algorithm": "fixed_window"},
        ],
    },
}
SLOT_VARS = {**BENCH_VARS, "TOLLGATE": {**BENCH_VARS["TOLLGATE"], "rules": BENCH_VARS["TOLLGATE"]["rules"] + [
    {"name": "inflight", "limit": "100000 concurrent", "match": {"paths": ["/c/*"]}}]}}
BENCH_SECRETS = {"ADMIN_TOKEN": "bench-admin", "ALLOW_TOKEN": "bench-allow", "IDENTITY_SECRET": "bench-secret"}


# ----------------------------------------------------------------- the runtimes under test
def start_edge(config: Path, state: Path, origin: str, profile_out: Path | None,
               tree: Path = ROOT) -> tuple[subprocess.Popen, str]:
    """`python -m src.localedge` of the source tree at `tree` (this checkout, or REV's worktree)."""
    prefix = [PY, "-m", "cProfile", "-o", str(profile_out)] if profile_out else [PY]
    cmd = prefix + ["-m", "src.localedge", "--config", str(config), "--state", str(state), "--port", "0",
                    "--origin", origin, "--quiet", "--no-build", "--no-crons"]
    proc = subprocess.Popen(cmd, cwd=tree, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    for raw in proc.stdout:
        line = raw.decode(errors="replace")
        if "listening on " in line:
            return proc, line.strip().rsplit("listening on ", 1)[1]
    raise RuntimeError(f"local runtime of {tree} did not start")


@contextlib.contextmanager
def worktree_at(rev: str) -> Iterator[Path]:
    """A throwaway detached worktree of `rev`, removed afterwards (the shared checkout is untouched)."""
    work = Path(tempfile.mkdtemp(prefix="tollgate-rev-"))
    subprocess.run(["git", "worktree", "add", "--detach", str(work), rev], cwd=ROOT, check=True,
                   capture_output=True, text=True)
    try:
        yield work
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(work)], cwd=ROOT, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


def edge_config(folder: Path, tree: Path, bench_vars: dict = BENCH_VARS) -> Path:
    """The bench config for the Worker of `tree`, from that tree's own wrangler.toml (an older
    tree gets BENCH_VARS: it may not know a concurrency rule)."""
    return derived_config(folder, bench_vars, BENCH_SECRETS, name="tollgate-bench",
                          main=tree / "worker" / "entry.py", base_dir=tree, source=tree / "wrangler.toml")


# ----------------------------------------------------------------- measuring
def measure_rounds(gen: Generator, targets: list[tuple[str, str]], rounds: int, connections: int,
                   duration: float) -> dict[str, list[dict]]:
    """Every target once per round, interleaved, so each sees the same machine state."""
    results: dict[str, list[dict]] = {name: [] for name, _ in targets}
    for n in range(rounds):
        for name, url in targets:
            gen.run(url, connections, 2)        # warm up: imports, SQLite files, connection pools
            load = gen.run(url, connections, duration)
            one = gen.run(url, 1, duration / 2)
            results[name].append({"load": load, "one": one})
            if rounds > 1:
                print(f"  round {n + 1}: {name:<24} {load['rps']:>8,.0f} req/s, p50 {fmt_ms(one['p50_us'])} ms "
                      f"(1 conn)", flush=True)
    return results


def best(runs: list[dict]) -> dict:
    return {"load": max((r["load"] for r in runs), key=lambda x: x["rps"]),
            "one": min((r["one"] for r in runs), key=lambda x: x["p50_us"])}


def fmt_ms(us: float) -> str:
    return f"{us / 1000:.2f}"


def report_slot(results: dict) -> None:
    """What a concurrency slot (take + release RPC) costs: the slot target against the gateway's."""
    plain, slot = best(results[GATEWAY]), best(results[SLOT])
    added = (slot["one"]["p50_us"] - plain["one"]["p50_us"]) / 1000
    print(f"a concurrency slot (take + release RPC) adds {added:.2f} ms at p50 on one connection, "
          f"{plain['load']['rps'] / max(1.0, slot['load']['rps']):.2f}x the gateway's time per request under load")


def span(values: list[float], fmt: str) -> str:
    mid = format(statistics.median(values), fmt)
    return f"{mid} ({format(min(values), fmt)}-{format(max(values), fmt)})" if len(values) > 1 else mid


# ----------------------------------------------------------------- the report
def print_table(results: dict[str, list[dict]], connections: int) -> None:
    print(f"| target | req/s ({connections} conn) | p50 / p99 ms ({connections} conn) "
          f"| p50 / p99 ms (1 conn) | non-2xx |")
    print("|---|---:|---:|---:|---:|")
    for name, runs in results.items():
        top = best(runs)
        load, one = top["load"], top["one"]
        bad = load["non2xx"] + load["socket_errors"] + one["non2xx"] + one["socket_errors"]
        print(f"| {name} | {load['rps']:,.0f} | {fmt_ms(load['p50_us'])} / {fmt_ms(load['p99_us'])} "
              f"| {fmt_ms(one['p50_us'])} / {fmt_ms(one['p99_us'])} | {bad} |")


def print_goals(results: dict[str, list[dict]]) -> None:
    allow_rps = best(results[ALLOW])["load"]["rps"]
    added = (best(results[GATEWAY])["one"]["p50_us"] - best(results[ORIGIN])["one"]["p50_us"]) / 1000
    print(f"\n/__tollgate/allow: {allow_rps:,.0f} decisions/s (goal >= {GOAL_ALLOW_RPS:,}): "
          f"{'met' if allow_rps >= GOAL_ALLOW_RPS else 'NOT met'}")
    print(f"gateway adds {added:.2f} ms at p50 on one connection (goal < {GOAL_ADDED_P50_MS} ms): "
          f"{'met' if added < GOAL_ADDED_P50_MS else 'NOT met'}")


def print_against(results: dict[str, list[dict]], rev: str) -> None:
    """HEAD beside REV, round by round: median (min-max) over the rounds."""
    origin = [r["one"]["p50_us"] for r in results[ORIGIN]]
    print(f"\nA/B against {rev}, median (min-max) over {len(origin)} round(s):")
    for label, gateway, allow in (("this checkout", GATEWAY, ALLOW), (f"@{rev}", f"{GATEWAY} @{rev}", f"{ALLOW} @{rev}")):
        added = [(r["one"]["p50_us"] - o) / 1000 for r, o in zip(results[gateway], origin)]
        print(f"  {label:<16} /allow {span([r['load']['rps'] for r in results[allow]], ',.0f')} req/s, "
              f"/allow p50 {span([r['one']['p50_us'] / 1000 for r in results[allow]], '.2f')} ms, "
              f"gateway {span([r['load']['rps'] for r in results[gateway]], ',.0f')} req/s, "
              f"gateway adds {span(added, '.2f')} ms at p50")


# ----------------------------------------------------------------- the command
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="scripts/bench gateway", description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=10.0, help="seconds per throughput run (latency runs: half)")
    p.add_argument("--connections", type=int, default=32, help="concurrent connections in throughput runs")
    p.add_argument("--clients", type=int, default=100, help="distinct API keys (Durable Objects) in the load")
    p.add_argument("--generator", choices=("auto", "wrk", "aiohttp"), default="auto")
    p.add_argument("--rounds", type=int, default=1, help="repeat every target; keep the best round of each")
    p.add_argument("--profile", action="store_true", help="run the runtime under cProfile and print the top")
    p.add_argument("--against", metavar="REV", help="also serve REV's Worker (a throwaway worktree) and measure "
                   "it in the same rounds: an A/B of two commits on one machine state")
    return p.parse_args(argv)


def generator_kind(asked: str) -> str | None:
    kind = ("wrk" if shutil.which("wrk") else "aiohttp") if asked == "auto" else asked
    if kind == "wrk" and not shutil.which("wrk"):
        print("wrk is not installed (apt-get install -y wrk); use --generator aiohttp", file=sys.stderr)
        return None
    return kind


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    kind = generator_kind(args.generator)
    if kind is None:
        return 2
    work = Path(tempfile.mkdtemp(prefix="tollgate-bench-"))
    state = work / "state"
    profile_out = work / "edge.prof" if args.profile else None
    with contextlib.ExitStack() as stack:
        origin_proc, origin = start_origin(work)       # each process is stopped before what it needs goes
        stack.callback(stop, origin_proc)
        edge_proc, edge = start_edge(edge_config(work, ROOT, SLOT_VARS), state, origin, profile_out)
        stack.callback(stop, edge_proc)
        targets = [(ORIGIN, f"{origin}/v1/items"), (GATEWAY, f"{edge}/v1/items"),
                   (ALLOW, f"{edge}/__tollgate/allow/v1/items"), (SLOT, f"{edge}/c/items")]
        if args.against:
            tree = stack.enter_context(worktree_at(args.against))
            other_proc, other = start_edge(edge_config(work / "against", tree), work / "state-against", origin,
                                           None, tree)
            stack.callback(stop, other_proc)
            targets += [(f"{GATEWAY} @{args.against}", f"{other}/v1/items"),
                        (f"{ALLOW} @{args.against}", f"{other}/__tollgate/allow/v1/items")]
        load_before = os.getloadavg()[0]
        results = measure_rounds(Generator(kind, args.clients, work), targets, args.rounds, args.connections,
                                 args.duration)
    print(f"\nTollgate gateway benchmark: {platform.python_implementation()} {platform.python_version()}, "
          f"{os.cpu_count()} cores, load generator: {'wrk 1 thread' if kind == 'wrk' else 'aiohttp subprocess'}, "
          f"{args.clients} clients, state in SQLite on disk ({state}), "
          f"best of {args.rounds} round(s), load average {load_before:.1f} before / "
          f"{os.getloadavg()[0]:.1f} after\n")
    print_table(results, args.connections)
    print_goals(results)
    report_slot(results)
    if args.against:
        print_against(results, args.against)
    if profile_out and profile_out.exists():
        print("\nRuntime profile (whole run, top 25 by own time):")
        pstats.Stats(str(profile_out)).sort_stats("tottime").print_stats(25)
        print(f"full profile kept in {profile_out} (python -m pstats {profile_out})")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
