"""A real HTTP receiver for the sink tests: verifies the HMAC signature, upserts by
(client, rule, period) keeping the highest version, and can be told to fail."""
from __future__ import annotations

from aiohttp import web

from src.tollgate.snapshots import (IDEMPOTENCY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, decode_ndjson,
                                    idempotency_key, verify)


class Receiver:
    def __init__(self, secret: bytes) -> None:
        self.secret = secret
        self.rows: dict[tuple, dict] = {}
        self.requests: list[dict] = []   # every POST: status answered, idempotency key, rows
        self.fail_next: list[int] = []   # statuses to answer before accepting
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        key = request.headers.get(IDEMPOTENCY_HEADER, "")
        entry = {"key": key, "rows": 0}
        self.requests.append(entry)
        try:
            ts = int(request.headers.get(TIMESTAMP_HEADER, ""))
        except ValueError:
            ts = -1
        if not verify(self.secret, ts, body, request.headers.get(SIGNATURE_HEADER, "")):
            entry["status"] = 401
            return web.Response(status=401, text="bad signature")
        if key != idempotency_key(body):
            entry["status"] = 400
            return web.Response(status=400, text="idempotency key does not match the body")
        if self.fail_next:
            status = self.fail_next.pop(0)
            entry["status"] = status
            return web.Response(status=status, headers={"Retry-After": "0"} if status == 429 else {})
        for rec in decode_ndjson(body):
            cur = self.rows.get(rec.key)
            if cur is None or rec.version > cur["version"]:
                self.rows[rec.key] = rec.as_dict()
        entry.update(status=200, rows=body.count(b"\n"))
        return web.json_response({"ok": True})

    def totals(self) -> dict[str, tuple[int, int, int, int]]:
        out: dict[str, list[int]] = {}
        for r in self.rows.values():
            t = out.setdefault(r["rule"], [0, 0, 0, 0])
            for i, c in enumerate(("allowed", "admitted", "denied", "shadow_denied")):
                t[i] += r[c]
        return {k: tuple(v) for k, v in out.items()}

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/usage", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/usage"
        return self.url

    async def stop(self) -> None:
        if self.runner:
            await self.runner.cleanup()
