#!/usr/bin/env python3
"""HTTP fuzzing of the running gateway (the local runtime, real sockets, raw bytes).

    scripts/fuzz [--requests N] [--seed S]

Hypothesis generates requests over identities (every byte value in x-api-key and
Authorization, lengths up to 300, repeated headers), costs (with and without the
allow token), methods (standard, extension, unknown, lower-case), paths (dot
segments, %-escapes, `//`, the /__tollgate/ routes), header sizes up to 500 kB
and bodies. Every answer must be below 500, carry no traceback, and be problem+json
when it is an error the gateway made. Afterwards every tracked client's bucket must
hold exactly what the responses admitted: its `total` rule's admitted cost and
request count equal the drop in `RateLimit` remaining over the admitted answers,
and a denial never moved it.

Time is virtual (src/tollgate/clock.py), one millisecond per request, so a run is
the same whatever the machine's speed and never crosses an accounting hour.
"""
from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from scripts.fuzz_checks import Result, check_answer, check_buckets, track, track_reset  # noqa: E402
from scripts.fuzz_requests import POOL, SECRETS, START_MS, TOLLGATE, build, strategies  # noqa: E402
from scripts.raw_http import send  # noqa: E402


# ------------------------------------------------------------------ the gateway under test
class Gateway:
    """The repo's Worker on the local runtime, in a thread of its own, on a free port."""

    def __init__(self, folder: Path) -> None:
        from src.localedge.derived import derived_config
        self.config = derived_config(folder / "cfg", {"TOLLGATE": TOLLGATE}, SECRETS, name="tollgate-fuzz")
        self.state = folder / "state"
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)
        self.port = 0

    def __enter__(self) -> "Gateway":
        self._thread.start()
        if not self._ready.wait(60):
            raise RuntimeError("the local runtime did not start")
        return self

    def __exit__(self, *exc: Any) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    async def _serve(self) -> None:
        from src.localedge import LocalEdge
        from src.localedge.origin import EchoOrigin
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        async with EchoOrigin() as origin:
            async with LocalEdge(self.config, self.state, port=0, origin=origin.url, build=False,
                                 crons=False) as edge:
                self.edge = edge
                self.port = edge.port
                self._ready.set()
                await self._stop.wait()


def run(requests: int, seed: int | None = None, folder: Path | None = None) -> Result:
    """Send at least `requests` generated requests; findings are collected, never raised."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as with_seed
    from src.tollgate import clock

    result = Result()
    now = [START_MS]
    per_example = 4
    folder = folder or Path(tempfile.mkdtemp(prefix="tollgate-fuzz-"))

    with clock.use(lambda: now[0]), Gateway(folder) as gw:
        from hypothesis import strategies as st

        @settings(max_examples=math.ceil(requests / per_example), deadline=None, database=None,
                  derandomize=seed is None, phases=[Phase.generate, Phase.shrink],
                  suppress_health_check=list(HealthCheck))
        @given(st.lists(strategies(), min_size=per_example, max_size=per_example))
        def batch(specs: list) -> None:
            for spec in specs:
                head, body, tracked, path = build(spec)
                now[0] += 1
                status, headers, payload = send(gw.port, head, body)
                check_answer(spec, path, status, headers, payload, result)
                track_reset(spec, path, status, result)
                if tracked is not None:
                    track(tracked, status, headers, result)

        # A fixed opening, so every run meets a denial whatever hypothesis draws: each pool
        # client sends 5 quick requests to /v1/tight (burst 3), the last ones get 429.
        for key in POOL:
            for _ in range(5):
                spec = ("GET", "/v1/tight", ("pool", key), None, [], 0, b"", None)
                head, body, tracked, path = build(spec)
                now[0] += 1
                status, headers, payload = send(gw.port, head, body)
                check_answer(spec, path, status, headers, payload, result)
                track(key, status, headers, result)
        if seed is not None:
            batch = with_seed(seed)(batch)
        try:
            batch()
        except Exception as exc:  # hypothesis re-raises the shrunk failing example
            result.findings.append(f"{type(exc).__name__}: {exc}")
        check_buckets(gw.port, result)
        errors = gw.edge.uncaught_errors()
        if errors:
            result.findings.append(f"{errors} uncaught exception(s) in the Worker (see the log)")
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="scripts/fuzz", description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=10_000, help="requests to generate (default 10000)")
    p.add_argument("--seed", type=int, default=None, help="hypothesis seed (default: derandomized, repeatable)")
    args = p.parse_args(argv)
    result = run(args.requests, args.seed)
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(result.statuses.items()))
    print(f"fuzz: {result.requests} requests, statuses {{{statuses}}}, {len(result.tracked)} buckets checked")
    for finding in result.findings:
        print(f"FINDING: {finding}")
    print(f"fuzz: {len(result.findings)} finding(s)")
    return 1 if result.findings else 0


if __name__ == "__main__":
    sys.exit(main())
