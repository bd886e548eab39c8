#!/usr/bin/env python3
"""The load side of the HTTP benchmarks: the origin process and the load generators.

Each runs in a process of its own, so the runtime under test never shares an
interpreter with what loads it. `scripts/bench gateway` and `scripts/bench workerd`
start them through here (`start_origin`, `Generator`).
"""
from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable

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
        Path(port_file).write_text(str(runner.addresses[0][1]))
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


class Generator:
    """wrk (one thread) or the aiohttp fallback, run once per measurement in a fresh process."""

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
            cmd = [PY, __file__, "--loadgen", url, str(connections), str(duration), str(self.clients)]
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


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--origin-server"]:
        serve_origin(sys.argv[2])
    elif sys.argv[1:2] == ["--loadgen"]:
        url, connections, duration, clients = sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
        aiohttp_loadgen(url, connections, duration, clients)
    else:
        sys.exit("usage: bench_load.py --origin-server PORT_FILE | --loadgen URL CONNECTIONS SECONDS CLIENTS")
