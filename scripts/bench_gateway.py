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
                          [--generator auto|wrk|aiohttp] [--profile]

On a shared machine other processes steal CPU: --rounds N keeps each target's
best round, and the load average is printed beside the figures.

--profile runs the runtime under cProfile and prints where its time went.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import pstats
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from src.localedge.derived import derived_config  # noqa: E402
PY = sys.executable
GOAL_ALLOW_RPS = 2000
GOAL_ADDED_P50_MS = 1.0

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

WRK_SCRIPT = """\
local keys = {{}}
for i = 1, {clients} do keys[i] = "bench-client-" .. i end
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, nil, {{["X-Api-Key"] = keys[(n % {clients}) + 1]}})
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('RESULT {{"requests":%d,"duration_us":%d,"non2xx":%d,"socket_errors":%d,' ..
    '"p50_us":%d,"p99_us":%d}}\\n', summary.requests, summary.duration, e.status,
    e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


# ----------------------------------------------------------------- child processes
def serve_origin(port_file: str) -> None:
    """The origin: a minimal aiohttp app answering a small JSON body."""
    from aiohttp import web

    body = b'{"items":[1,2,3]}'

    async def handle(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    async def main() -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        Path(port_file).write_text(str(site._server.sockets[0].getsockname()[1]))
        await asyncio.Event().wait()

    asyncio.run(main())


def aiohttp_loadgen(url: str, connections: int, duration: float, clients: int) -> None:
    """Fallback load generator (own process): closed loop, `connections` workers, prints RESULT json."""
    import aiohttp

    async def main() -> dict:
        latencies: list[float] = []
        non2xx = errors = 0
        deadline = time.perf_counter() + duration
        counter = iter(range(10**12))

        async def worker(http: aiohttp.ClientSession) -> None:
            nonlocal non2xx, errors
            while time.perf_counter() < deadline:
                key = f"bench-client-{next(counter) % clients + 1}"
                t0 = time.perf_counter()
                try:
                    async with http.get(url, headers={"X-Api-Key": key}) as r:
                        await r.read()
                        if not 200 <= r.status < 400:
                            non2xx += 1
                except aiohttp.ClientError:
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - t0)

        started = time.perf_counter()
        conn = aiohttp.TCPConnector(limit=connections)
        async with aiohttp.ClientSession(connector=conn) as http:
            await asyncio.gather(*(worker(http) for _ in range(connections)))
        elapsed = time.perf_counter() - started
        latencies.sort()
        pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else 0.0
        return {"requests": len(latencies), "duration_us": int(elapsed * 1e6), "non2xx": non2xx,
                "socket_errors": errors, "p50_us": int(pick(0.50) * 1e6), "p99_us": int(pick(0.99) * 1e6)}

    print("RESULT " + json.dumps(asyncio.run(main())), flush=True)


# ----------------------------------------------------------------- orchestration
class Generator:
    def __init__(self, kind: str, clients: int, workdir: Path) -> None:
        self.kind = kind
        self.clients = clients
        if kind == "wrk":
            self.script = workdir / "bench.lua"
            self.script.write_text(WRK_SCRIPT.format(clients=clients))

    def run(self, url: str, connections: int, duration: float) -> dict:
        if self.kind == "wrk":
            cmd = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--timeout", "10s",
                   "-s", str(self.script), url]
        else:
            cmd = [PY, __file__, "--loadgen", url, "--connections", str(connections), "--duration", str(duration),
                   "--clients", str(self.clients)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
        line = next((l for l in done.stdout.splitlines() if l.startswith("RESULT ")), None)
        if line is None:
            raise RuntimeError(f"load generator failed: {done.stdout}\n{done.stderr}")
        result = json.loads(line[7:])
        result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
        return result


def start_origin(workdir: Path) -> tuple[subprocess.Popen, str]:
    port_file = workdir / "origin.port"
    proc = subprocess.Popen([PY, __file__, "--origin-server", str(port_file)], cwd=ROOT)
    deadline = time.monotonic() + 20
    while not port_file.exists() or not port_file.read_text():
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError("origin did not start")
        time.sleep(0.05)
    return proc, f"http://127.0.0.1:{port_file.read_text()}"


def start_edge(config: Path, state: Path, origin: str, profile_out: Path | None) -> tuple[subprocess.Popen, str]:
    prefix = [PY, "-m", "cProfile", "-o", str(profile_out)] if profile_out else [PY]
    cmd = prefix + ["-m", "src.localedge", "--config", str(config), "--state", str(state), "--port", "0",
                    "--origin", origin, "--quiet", "--no-build", "--no-crons"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    for raw in proc.stdout:
        line = raw.decode(errors="replace")
        if "listening on " in line:
            return proc, line.strip().rsplit("listening on ", 1)[1]
    raise RuntimeError("local runtime did not start")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def fmt_ms(us: float) -> str:
    return f"{us / 1000:.2f}"


def report_slot(results: dict) -> None:
    """What a concurrency slot (take + release RPC) costs: the slot target against the gateway's."""
    plain, slot = results["gateway → origin"], results["gateway, slot"]
    added = (slot["one"]["p50_us"] - plain["one"]["p50_us"]) / 1000
    print(f"a concurrency slot (take + release RPC) adds {added:.2f} ms at p50 on one connection, "
          f"{plain['load']['rps'] / max(1.0, slot['load']['rps']):.2f}x the gateway's time per request under load")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="scripts/bench gateway", description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=10.0, help="seconds per throughput run (latency runs: half)")
    p.add_argument("--connections", type=int, default=32, help="concurrent connections in throughput runs")
    p.add_argument("--clients", type=int, default=100, help="distinct API keys (Durable Objects) in the load")
    p.add_argument("--generator", choices=("auto", "wrk", "aiohttp"), default="auto")
    p.add_argument("--rounds", type=int, default=1, help="repeat every target; keep the best round of each")
    p.add_argument("--profile", action="store_true", help="run the runtime under cProfile and print the top")
    p.add_argument("--origin-server", help=argparse.SUPPRESS)
    p.add_argument("--loadgen", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.origin_server:
        serve_origin(args.origin_server)
        return 0
    if args.loadgen:
        aiohttp_loadgen(args.loadgen, args.connections, args.duration, args.clients)
        return 0

    kind = args.generator
    if kind == "auto":
        kind = "wrk" if shutil.which("wrk") else "aiohttp"
    if kind == "wrk" and not shutil.which("wrk"):
        print("wrk is not installed (apt-get install -y wrk); use --generator aiohttp", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="tollgate-bench-"))
    config = derived_config(work, SLOT_VARS, BENCH_SECRETS, name="tollgate-bench")
    state = work / "state"
    profile_out = work / "edge.prof" if args.profile else None
    gen = Generator(kind, args.clients, work)
    origin_proc, origin = start_origin(work)
    edge_proc, edge = start_edge(config, state, origin, profile_out)
    targets = [("origin direct", f"{origin}/v1/items"), ("gateway → origin", f"{edge}/v1/items"),
               ("/__tollgate/allow", f"{edge}/__tollgate/allow/v1/items"), ("gateway, slot", f"{edge}/c/items")]
    results: dict[str, dict] = {}
    load_before = os.getloadavg()[0]
    try:
        for _ in range(args.rounds):
            for name, url in targets:
                gen.run(url, args.connections, 2)        # warm up: imports, SQLite files, connection pools
                load = gen.run(url, args.connections, args.duration)
                one = gen.run(url, 1, args.duration / 2)
                best = results.setdefault(name, {"load": load, "one": one})
                if load["rps"] > best["load"]["rps"]:
                    best["load"] = load
                if one["p50_us"] < best["one"]["p50_us"]:
                    best["one"] = one
    finally:
        stop(edge_proc)
        stop(origin_proc)

    import platform
    print(f"\nTollgate gateway benchmark: {platform.python_implementation()} {platform.python_version()}, "
          f"{os.cpu_count()} cores, load generator: {'wrk 1 thread' if kind == 'wrk' else 'aiohttp subprocess'}, "
          f"{args.clients} clients, state in SQLite on disk ({state}), "
          f"best of {args.rounds} round(s), load average {load_before:.1f} before / "
          f"{os.getloadavg()[0]:.1f} after\n")
    print(f"| target | req/s ({args.connections} conn) | p50 / p99 ms ({args.connections} conn) "
          f"| p50 / p99 ms (1 conn) | non-2xx |")
    print("|---|---:|---:|---:|---:|")
    for name, _ in targets:
        load, one = results[name]["load"], results[name]["one"]
        bad = load["non2xx"] + load["socket_errors"] + one["non2xx"] + one["socket_errors"]
        print(f"| {name} | {load['rps']:,.0f} | {fmt_ms(load['p50_us'])} / {fmt_ms(load['p99_us'])} "
              f"| {fmt_ms(one['p50_us'])} / {fmt_ms(one['p99_us'])} | {bad} |")
    allow_rps = results["/__tollgate/allow"]["load"]["rps"]
    added = (results["gateway → origin"]["one"]["p50_us"] - results["origin direct"]["one"]["p50_us"]) / 1000
    print(f"\n/__tollgate/allow: {allow_rps:,.0f} decisions/s (goal >= {GOAL_ALLOW_RPS:,}): "
          f"{'met' if allow_rps >= GOAL_ALLOW_RPS else 'NOT met'}")
    print(f"gateway adds {added:.2f} ms at p50 on one connection (goal < {GOAL_ADDED_P50_MS} ms): "
          f"{'met' if added < GOAL_ADDED_P50_MS else 'NOT met'}")
    report_slot(results)
    if profile_out and profile_out.exists():
        print("\nRuntime profile (whole run, top 25 by own time):")
        pstats.Stats(str(profile_out)).sort_stats("tottime").print_stats(25)
        print(f"full profile kept in {profile_out} (python -m pstats {profile_out})")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
