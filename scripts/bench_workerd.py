#!/usr/bin/env python3
"""scripts/bench workerd: CPU per request on real workerd, beside the floors under it.

Every subject runs on `wrangler dev` with the pinned workerd and Pyodide 314
(scripts/dev --workerd). The figure is the CPU time (every thread's, from
/proc/<pid>/task/*/schedstat) of the one workerd process that runs the user Worker and its
Durable Objects, over --requests requests sent from another process; wrangler's
proxy process is not counted (it is not part of production).

  tollgate /allow      the dry-run bundle: one decision over the sample's three rules
  tollgate gateway     the same, forwarded to a local origin
  tollgate gateway+slot  the gateway with a concurrency rule too: a slot taken and released per request
  tollgate /health     the bundle answering without a decision
  python floor         a Python Worker that answers at once (runtime + SDK)
  python RPC floor     a Python Worker calling a Python Durable Object that returns a constant
  python write floor   the same, the Durable Object writing one SQLite row per call (one commit)
  JS GCRA              a JavaScript Worker + JavaScript SQLite Durable Object, one GCRA rule
  local runtime        tollgate /allow on the CPython local runtime (its whole process)

Plus cold start (the first request after the runtime is up) and bundle size.
"Tollgate above the RPC floor" = /allow minus the RPC floor: the goal is <= 0.3 ms.
"Above the write floor" leaves out the commit of the one row a decision writes, which every
durable limiter pays: what is left is Tollgate's own Python.

    scripts/bench workerd [--requests 2000] [--rounds 3] [--connections 8] [--clients 50]
                          [--against REV[,REV...]] [--only "tollgate /allow,python RPC floor"] [--interleave N]

--against REV serves another commit's dry-run bundle (or each of a comma-separated list) as
one more /allow subject in the same rounds: the honest way to see what a change costs on a
noisy machine. --interleave N runs every subject at once and loads them in N alternating
blocks instead, so the subjects compared are measured seconds apart, not minutes.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from scripts.bench_gateway import BENCH_VARS, SLOT_VARS  # noqa: E402
from scripts.bench_load import start_origin, stop  # noqa: E402
from scripts.workerd import dry_run  # noqa: E402
from scripts.workerd.cpu import cpu_seconds, user_worker_pid  # noqa: E402,F401 (bench_identity imports them here)
from scripts.workerd.interleave import interleaved  # noqa: E402
from src.localedge.derived import derived_config  # noqa: E402

PY = sys.executable
SUBJECTS = ROOT / "scripts" / "workerd" / "bench_subjects"
GOAL_ABOVE_RPC_MS = 0.3
SECRETS = {"ADMIN_TOKEN": "bench-admin", "ALLOW_TOKEN": "bench-allow", "IDENTITY_SECRET": "bench-secret"}


def subject_config(folder: Path, main: Path, classes: list[tuple[str, str]], flags: list[str]) -> Path:
    """A wrangler.toml for one floor or comparison Worker."""
    folder.mkdir(parents=True)
    shutil.copy(main, folder / main.name)
    lines = [f'name = "bench-{main.stem.replace("_", "-")}"', f'main = "{main.name}"',
             'compatibility_date = "2026-10-01"', f"compatibility_flags = {json.dumps(flags)}"]
    for binding, cls in classes:
        lines += ["[[durable_objects.bindings]]", f'name = "{binding}"', f'class_name = "{cls}"']
    if classes:
        lines += ["[[migrations]]", 'tag = "v1"', f"new_sqlite_classes = {json.dumps([c for _, c in classes])}"]
    (folder / "wrangler.toml").write_text("\n".join(lines) + "\n")
    (folder / ".dev.vars").write_text("")
    return folder / "wrangler.toml"


def start(cmd: list[str]) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    for raw in proc.stdout:
        line = raw.decode(errors="replace")
        if "listening on " in line:
            return proc, line.strip().rsplit("listening on ", 1)[1]
    raise RuntimeError(f"did not start: {' '.join(cmd)}")


def end(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    try:
        os.killpg(proc.pid, 9)
    except ProcessLookupError:
        pass


def load(url: str, requests: int, connections: int, clients: int, headers: dict[str, str]) -> dict:
    cmd = [PY, __file__, "--loadgen", url, str(requests), str(connections), str(clients), json.dumps(headers)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    line = next((l for l in done.stdout.splitlines() if l.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"load generator failed: {done.stdout}\n{done.stderr}")
    return json.loads(line[7:])


def loadgen(url: str, requests: int, connections: int, clients: int, headers: dict[str, str]) -> None:
    """Own process: `requests` GETs over `connections` connections; prints RESULT json."""
    import asyncio

    import aiohttp

    async def main() -> dict:
        todo = iter(range(requests))
        statuses: dict[int, int] = {}

        async def worker(http: aiohttp.ClientSession) -> None:
            for i in todo:
                async with http.get(url, headers={**headers, "X-Api-Key": f"bench-{i % clients}"}) as r:
                    await r.read()
                    statuses[r.status] = statuses.get(r.status, 0) + 1
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections)) as http:
            t0 = time.perf_counter()
            await asyncio.gather(*(worker(http) for _ in range(connections)))
            return {"seconds": time.perf_counter() - t0, "statuses": statuses}
    print("RESULT " + json.dumps(asyncio.run(main())), flush=True)


def first_request_ms(url: str) -> float:
    import urllib.request
    t0 = time.perf_counter()
    with urllib.request.urlopen(urllib.request.Request(url, headers={"X-Api-Key": "cold"}), timeout=60) as r:
        r.read()
    return (time.perf_counter() - t0) * 1000


def measure(proc: subprocess.Popen, url: str, path: str, args: argparse.Namespace, workerd: bool) -> dict:
    """Cold first request, warm-up, then CPU ms per request of the process that runs the Worker."""
    cold = measure_block(proc, url, path, args, workerd, warm=True)
    return {**measure_block(proc, url, path, args, workerd, warm=False), "cold_ms": cold}


def measure_block(proc: subprocess.Popen, url: str, path: str, args: argparse.Namespace, workerd: bool,
                  warm: bool) -> Any:
    """`warm`: the first request's time (ms) after the warm-up; else one measured block."""
    headers = {"Authorization": f"Bearer {SECRETS['ALLOW_TOKEN']}"}
    if warm:
        cold = first_request_ms(url + path)
        load(url + path, max(200, args.requests // 10), args.connections, args.clients, headers)
        return cold
    pid = user_worker_pid(proc.pid) if workerd else proc.pid
    before = cpu_seconds(pid)
    result = load(url + path, args.requests, args.connections, args.clients, headers)
    spent = cpu_seconds(pid) - before
    ok = sum(n for s, n in result["statuses"].items() if int(s) < 400)
    if ok != args.requests:
        raise RuntimeError(f"{url}{path}: not every request succeeded: {result['statuses']}")
    return {"cpu_ms": spent * 1000 / args.requests, "rps": args.requests / result["seconds"]}


def workerd_cmd(config: Path, state: Path, origin: str, bundle: Path | None) -> list[str]:
    cmd = [PY, "-m", "scripts.workerd.dev", "--config", str(config), "--state", str(state), "--port", "0",
           "--origin", origin, "--quiet", "--no-build", "--no-crons"]
    return cmd + (["--bundle", str(bundle)] if bundle else [])


def one_round(work: Path, bundle: Path, origin: str, args: argparse.Namespace, n: int,
              against: dict[str, Path] | None = None) -> dict[str, dict]:
    """Every subject once (or those --only names); each gets a fresh runtime."""
    out = {}
    for name, (cmd, path, on_workerd) in subjects_for(work, bundle, origin, args, n, against).items():
        proc, url = start(cmd)
        try:
            out[name] = measure(proc, url, path, args, on_workerd)
        finally:
            end(proc)
        print(f"  round {n + 1}: {name:<22} {out[name]['cpu_ms']:.3f} ms CPU/request", flush=True)
    return out


def subjects_for(work: Path, bundle: Path, origin: str, args: argparse.Namespace, n: int,
                 against: dict[str, Path] | None) -> dict[str, tuple[list[str], str, bool]]:
    """name -> (command, path, on workerd) of every subject (or those --only names)."""
    tollgate_cfg = derived_config(work / f"tollgate-{n}", BENCH_VARS, SECRETS, name="tollgate-bench")
    slot_cfg = derived_config(work / f"tollgate-slot-{n}", SLOT_VARS, SECRETS, name="tollgate-bench")
    py = ["python_workers"]
    subjects = {
        "tollgate /allow": (workerd_cmd(tollgate_cfg, work / f"s-allow-{n}", "none", bundle), "/__tollgate/allow", True),
        "tollgate gateway": (workerd_cmd(tollgate_cfg, work / f"s-gw-{n}", origin, bundle), "/v1/items", True),
        "tollgate gateway+slot": (workerd_cmd(slot_cfg, work / f"s-slot-{n}", origin, bundle), "/c/items", True),
        "tollgate /health": (workerd_cmd(tollgate_cfg, work / f"s-health-{n}", "none", bundle), "/__tollgate/health", True),
        "python floor": (workerd_cmd(subject_config(work / f"pyh-{n}", SUBJECTS / "py_health.py", [], py),
                                     work / f"s-pyh-{n}", "none", None), "/", True),
        "python RPC floor": (workerd_cmd(subject_config(work / f"pyrpc-{n}", SUBJECTS / "py_rpc.py",
                                                        [("CONSTANT", "Constant")], py),
                                         work / f"s-pyrpc-{n}", "none", None), "/", True),
        "python write floor": (workerd_cmd(subject_config(work / f"pyw-{n}", SUBJECTS / "py_rpc_write.py",
                                                          [("COUNTER", "Counter")], py),
                                           work / f"s-pyw-{n}", "none", None), "/", True),
        "JS GCRA": (workerd_cmd(subject_config(work / f"js-{n}", SUBJECTS / "js_gcra.js", [("GCRA", "Gcra")], []),
                                work / f"s-js-{n}", "none", None), "/", True),
        "local runtime /allow": ([PY, "-m", "src.localedge", "--config", str(tollgate_cfg), "--state",
                                  str(work / f"s-local-{n}"), "--port", "0", "--origin", "none", "--quiet",
                                  "--no-build", "--no-crons"], "/__tollgate/allow", False),
    }
    for rev, rev_bundle in (against or {}).items():   # the same /allow subject from another commit's bundle
        subjects[f"tollgate /allow @{rev}"] = (
            workerd_cmd(tollgate_cfg, work / f"s-against-{rev}-{n}", "none", rev_bundle), "/__tollgate/allow", True)
    if args.only:
        subjects = {k: v for k, v in subjects.items() if k in args.only or k.startswith("tollgate /allow @")}
    return subjects


def span(values: list[float], digits: int = 2) -> str:
    lo, mid, hi = min(values), statistics.median(values), max(values)
    return f"{mid:.{digits}f} ({lo:.{digits}f}-{hi:.{digits}f})" if len(values) > 1 else f"{mid:.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="scripts/bench workerd", description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=2000, help="measured requests per subject and round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--connections", type=int, default=8)
    p.add_argument("--clients", type=int, default=50, help="API keys: one Durable Object each")
    p.add_argument("--against", metavar="REV[,REV]", help="also serve each REV's dry-run bundle as a subject, "
                   "in the same rounds (an A/B of commits on one machine state)")
    p.add_argument("--interleave", type=int, metavar="BLOCKS", default=0,
                   help="every subject up at once, BLOCKS blocks of --requests each in turn, instead of "
                   "--rounds (figures over blocks; see scripts/workerd/interleave.py)")
    p.add_argument("--only", type=lambda v: [x.strip() for x in v.split(",")], default=None,
                   help='comma-separated subjects to run, e.g. "tollgate /allow,python RPC floor"')
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tollgate-bench-workerd-") as tmp:
        work = Path(tmp)
        bundle, size = dry_run.build(work / "bundle")
        revs = [r.strip() for r in args.against.split(",") if r.strip()] if args.against else []
        against = {rev: dry_run.build_at(rev, work / f"against-{rev}") for rev in revs}
        origin_proc, origin = start_origin(work)
        try:
            if args.interleave:
                rounds = interleaved(subjects_for(work, bundle, origin, args, 0, against), args, args.interleave,
                                     start, end, measure_block)
            else:
                rounds = [one_round(work, bundle, origin, args, n, against) for n in range(args.rounds)]
        finally:
            stop(origin_proc)
    runs = f"{args.interleave} interleaved blocks" if args.interleave else f"{args.rounds} rounds"
    print(f"\nworkerd 1.20261117.1, Pyodide 314.0.6; {args.requests} requests x {runs}, "
          f"{args.connections} connections, {args.clients} clients; median (min-max) over {runs.split()[-1]}")
    print(f"{'subject':<24}{'CPU ms/request':>22}{'first request ms':>22}{'requests/s':>18}")
    for name in rounds[0]:
        col = lambda key: [r[name][key] for r in rounds]
        print(f"{name:<24}{span(col('cpu_ms'), 3):>22}{span(col('cold_ms'), 0):>22}{span(col('rps'), 0):>18}")
    print(f"bundle: {size}")
    for name in [n for n in rounds[0] if n.startswith("tollgate /allow")]:
        if "python RPC floor" in rounds[0]:
            above = [r[name]["cpu_ms"] - r["python RPC floor"]["cpu_ms"] for r in rounds]
            print(f"{name} above the Python RPC floor: {span(above, 3)} ms CPU (goal <= {GOAL_ABOVE_RPC_MS})")
        if "python write floor" in rounds[0]:
            above = [r[name]["cpu_ms"] - r["python write floor"]["cpu_ms"] for r in rounds]
            print(f"{name} above the Python write floor: {span(above, 3)} ms CPU")
    if "python RPC floor" in rounds[0] and "python write floor" in rounds[0]:
        commit = [r["python write floor"]["cpu_ms"] - r["python RPC floor"]["cpu_ms"] for r in rounds]
        print(f"one SQLite write per call (write floor minus RPC floor): {span(commit, 3)} ms CPU")
    if "JS GCRA" in rounds[0] and "tollgate /allow" in rounds[0]:
        ratio = [r["tollgate /allow"]["cpu_ms"] / r["JS GCRA"]["cpu_ms"] for r in rounds]
        print(f"tollgate /allow / JS GCRA: {span(ratio, 2)}x")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--loadgen":
        loadgen(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), json.loads(sys.argv[6]))
        sys.exit(0)
    sys.exit(main())
