"""Helpers for the gateway tests: a wrangler.toml for the repo's Worker, an
origin that records what reached it, and the local runtime in-process.

The config's `main`/`base_dir` point at the repo itself (not build/edge), so
the tests run the live source and never race a bundle being staged.
"""
from __future__ import annotations

import asyncio
import base64
import gzip
import json
import threading
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

from aiohttp import web

from src.localedge.derived import KEPT, derived_config

ROOT = Path(__file__).resolve().parents[2]
SECRETS = {"ADMIN_TOKEN": "test-admin-token", "ALLOW_TOKEN": "test-allow-token",
           "IDENTITY_SECRET": "test-identity-secret"}

def write_config(folder: Path, tollgate: dict | None, vars: dict | None = None, secrets: dict | None = None,
                 main: Path | None = None, base_dir: Path | None = None, d1: bool = False) -> Path:
    """wrangler.toml + .dev.vars in `folder`: the repo's Durable Object bindings (and its D1
    database with `d1`), `tollgate` as the object var [vars.TOLLGATE]."""
    all_vars = dict(vars or {})
    if tollgate is not None:
        all_vars["TOLLGATE"] = tollgate
    keep = KEPT + ("d1_databases",) if d1 else KEPT
    return derived_config(folder, all_vars, SECRETS if secrets is None else secrets, name="tollgate-test",
                          main=main, base_dir=base_dir, keep=keep)


# ------------------------------------------------------------------ origin
class Origin:
    """An HTTP origin on a free loopback port, in its own thread and event loop,
    so it outlives a runtime that is SIGKILLed. Every request is recorded.

    `/slow/<ms>` answers after <ms> milliseconds; `/status/<code>` answers that
    status (302 with a Location); `/hold` answers once the test lets it go
    (`let_go(n)`, first come first served) and `/stream` sends a chunk each time the
    test lets it go, ending after 3 (`in_flight`, `max_in_flight`: requests the origin is
    still answering); anything else echoes the request as JSON.
    """

    def __init__(self) -> None:
        self.received: list[dict] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.url = ""
        self.in_flight = self.max_in_flight = 0
        self._gate: asyncio.Semaphore | None = None

    def let_go(self, n: int = 1) -> None:
        """Let `n` waiting /hold requests (or /stream chunks) answer."""
        for _ in range(n):
            self._loop.call_soon_threadsafe(self._gate.release)

    def __enter__(self) -> "Origin":
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("origin did not start")
        return self

    def __exit__(self, *exc: Any) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def count(self) -> int:
        with self._lock:
            return len(self.received)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        self._gate = asyncio.Semaphore(0)
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        path, _, query = request.raw_path.partition("?")
        seen = {"method": request.method, "path": path, "query": query, "headers": [(k.lower(), v) for k, v in request.headers.items()],
                "body_b64": base64.b64encode(body).decode()}
        with self._lock:
            self.received.append(seen)
        if request.path in ("/hold", "/stream"):
            return await self._held(request)
        if request.path == "/gzip":
            return web.Response(body=gzip.compress(b"compressed hello " * 100),
                                headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"})
        parts = request.path.split("/")
        if len(parts) == 3 and parts[1] == "slow":
            await asyncio.sleep(int(parts[2]) / 1000)
        if len(parts) == 3 and parts[1] == "status":
            code = int(parts[2])
            headers = {"Location": "/elsewhere"} if 300 <= code < 400 else {}
            return web.Response(status=code, headers=headers, body=None if code in (204, 304) else b"status body")
        out = web.Response(status=201, body=json.dumps(seen).encode(), content_type="application/json",
                           headers={"X-Origin": "test-origin"})
        out.headers.add("Set-Cookie", "a=1; Path=/")
        out.headers.add("Set-Cookie", "b=2; Path=/")
        return out


    async def _held(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if request.path == "/hold":
                await self._gate.acquire()
                return web.Response(body=b"held and answered", content_type="text/plain")
            out = web.StreamResponse(headers={"Content-Type": "text/plain"})
            await out.prepare(request)
            for i in range(3):
                await self._gate.acquire()
                await out.write(f"chunk {i}\n".encode())
            await out.write_eof()
            return out
        finally:
            with self._lock:
                self.in_flight -= 1


# ------------------------------------------------------------------ the runtime under test
# Which runtime `serving()` starts: "local" (the CPython runtime, in this process) or
# "workerd" (real workerd serving the dry-run bundle). Set per test by the `runtime`
# parameter (tests/conftest.py): one suite, two runtimes.
RUNTIME = {"name": "local"}


def scheduled_path() -> str:
    """The route that runs the Worker's `scheduled` handler on the runtime under test.

    wrangler dev's `/__scheduled` is a JavaScript middleware it bundles into JS Workers
    only; for a Python Worker miniflare's own route runs the handler (scripts/workerd/dev.py)."""
    return "/cdn-cgi/local/scheduled" if RUNTIME["name"] == "workerd" else "/__scheduled"


@asynccontextmanager
async def serving(config: Path, state: Path, origin: str | None = None) -> AsyncIterator[Any]:
    """The Worker on a free port (real HTTP) on the runtime under test; yields an object with `.url`
    (the LocalEdge itself on the local runtime)."""
    if RUNTIME["name"] == "workerd":
        from tests.workerd_edge import WorkerdEdge
        edge = await asyncio.to_thread(WorkerdEdge(config, state, origin).start)
        try:
            yield edge
        finally:
            await asyncio.to_thread(edge.stop)
        return
    from src.localedge import LocalEdge
    edge = LocalEdge(config, state, port=0, origin=origin, build=False, crons=False)
    await edge.start()
    try:
        yield edge
    finally:
        await edge.stop()


def problem_of(status: int, headers: Any, body: bytes) -> dict:
    """The problem+json document of a reply, asserting its form (RFC 9457)."""
    assert headers.get("Content-Type", "").startswith("application/problem+json"), headers.get("Content-Type")
    doc = json.loads(body)
    assert doc["status"] == status and doc["title"], doc
    assert "Traceback" not in body.decode(errors="replace")
    return doc


def run_scenario(tmp_path: Path, tollgate: dict | None, scenario: Any, *, vars: dict | None = None,
                 secrets: dict | None = None, origin_url: str | None = None, with_origin: bool = True,
                 d1: bool = False, **session: Any) -> None:
    """Serve the repo's Worker with `tollgate` against a recording origin and run
    `await scenario(edge, origin, http)`. `with_origin=False` serves no ORIGIN_URL (the
    pure decision service); `origin_url` points the Worker at another origin."""
    import aiohttp

    config = write_config(tmp_path / "cfg", tollgate, vars, secrets=secrets, d1=d1)

    async def main() -> None:
        with Origin() as origin:
            target = (origin_url or origin.url) if with_origin else None
            async with serving(config, tmp_path / "state", origin=target) as edge:
                async with aiohttp.ClientSession(**session) as http:
                    await scenario(edge, origin, http)
    asyncio.run(main())


async def call(http: Any, method: str, url: str, **kw: Any) -> tuple[int, Any, bytes]:
    """One request, redirects not followed: (status, headers, body)."""
    async with http.request(method, url, allow_redirects=False, **kw) as r:
        return r.status, r.headers, await r.read()


async def rule_row(http: Any, url: str, who: str, rule: str) -> dict:
    """A client's row for `rule` as the admin API shows it (the read flushes the isolate's
    local denials and lease spends first, so the counts are exact)."""
    admin = {"Authorization": f"Bearer {SECRETS['ADMIN_TOKEN']}"}
    status, _, body = await call(http, "GET", f"{url}/__tollgate/admin/clients/{who}", headers=admin)
    assert status == 200, body
    return json.loads(body)["rules"][rule]
