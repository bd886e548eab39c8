"""The harness's CPython figures: the same wrangler bundle on the local runtime.

Run by harness.mjs with the repo's venv python:
    cpython_bench.py --bundle DIR --root REPO --decisions N --warmup W --tollgate-json JSON
Prints one JSON line: workers-shim import ms, bundle import ms, CPU ms per decision on
/__tollgate/allow (and on /__tollgate/health, the per-event floor), wall ms per decision.

The bundle is imported from its own folder, before anything else of the repo, so every
module (including src/tollgate) comes from the bundle; the local runtime (`src.localedge`)
is then found by extending the bundle's `src` package path with the repo's `src`.
Decisions go through `LocalEdge.dispatch_fetch`, the call its HTTP server makes, without
HTTP, like the Pyodide loop (which has no HTTP either).
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib
import json
import sys
import tempfile
import time
from pathlib import Path


def _timed_import(name: str) -> tuple[float, float]:
    """Wall and process-CPU milliseconds to import `name`."""
    wall, cpu = time.perf_counter(), time.process_time()
    importlib.import_module(name)
    return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


async def _loop(edge, path: str, n: int, request_for, batches: int = 1) -> tuple[float, float]:
    """CPU and wall ms per request: the cheapest of `batches` batches (other load only adds)."""
    best = (float("inf"), float("inf"))
    per = max(1, n // batches)
    for _ in range(batches):
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for _ in range(per):
            response = await edge.dispatch_fetch(request_for(path))
            if response.status != 200:
                raise SystemExit(f"{path} answered {response.status}: {await response.text()}")
            await response.bytes()
        cpu = (time.process_time() - cpu0) * 1000 / per
        if cpu < best[0]:
            best = (cpu, (time.perf_counter() - wall0) * 1000 / per)
    return best


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundle", required=True, type=Path)
    ap.add_argument("--root", required=True, type=Path)
    ap.add_argument("--decisions", type=int, default=400)
    ap.add_argument("--warmup", type=int, default=40)
    ap.add_argument("--batches", type=int, default=4)
    ap.add_argument("--tollgate-json", required=True)
    ap.add_argument("--secrets-json", default="{}", help="the secrets the Pyodide side gets (.dev.vars.example)")
    args = ap.parse_args()
    bundle, root = args.bundle.resolve(), args.root.resolve()

    # 1. The local `workers` shim, then the bundle, each timed after the interpreter is up.
    sys.path.insert(0, str(root / "src" / "localedge" / "sdk"))
    sdk_ms, sdk_cpu_ms = _timed_import("workers")
    sys.path.insert(0, str(bundle))
    bundle_ms, bundle_cpu_ms = _timed_import("entry")
    import src  # the bundle's `src` package (only src/tollgate inside)
    src.__path__.append(str(root / "src"))

    # 2. The local runtime around the already imported bundle.
    from src.localedge.config import ObjectVar, load_config
    from src.localedge.runtime import LocalEdge
    from workers.headers import JsHeaders
    from workers.request import JsRequest, Request

    config = dataclasses.replace(load_config(root / "wrangler.toml"), main=bundle / "entry.py",
                                 base_dir=bundle, build_command=None)
    tollgate = ObjectVar(json.loads(args.tollgate_json))
    with tempfile.TemporaryDirectory(prefix="tollgate-cpython-bench-") as state:
        edge = LocalEdge(root / "wrangler.toml", state, port=0, build=False, crons=False,
                         vars={**json.loads(args.secrets_json), "TOLLGATE": tollgate})
        edge.config = config
        await edge.start()
        try:
            def request_for(path: str) -> Request:
                headers = JsHeaders()
                pairs = headers.raw_pairs()
                pairs.append(("x-api-key", "bench-client"))
                pairs.append(("cf-connecting-ip", "203.0.113.7"))
                return Request(JsRequest("GET", f"https://tollgate.example{path}", headers, b""))

            await _loop(edge, "/__tollgate/allow", args.warmup, request_for)
            cpu, wall = await _loop(edge, "/__tollgate/allow", args.decisions, request_for, args.batches)
            await _loop(edge, "/__tollgate/health", args.warmup, request_for)
            health_cpu, _ = await _loop(edge, "/__tollgate/health", args.decisions, request_for, args.batches)
        finally:
            await edge.stop()
    print(json.dumps({
        "python": ".".join(map(str, sys.version_info[:3])),
        "sdk_import_ms": sdk_ms, "bundle_import_ms": bundle_ms,
        "sdk_import_cpu_ms": sdk_cpu_ms, "bundle_import_cpu_ms": bundle_cpu_ms,
        "cpu_ms_per_decision": cpu, "wall_ms_per_decision": wall, "health_cpu_ms": health_cpu,
    }))


if __name__ == "__main__":
    asyncio.run(main())
