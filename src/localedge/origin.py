"""The embedded demo origin: an echo service that answers JSON with what it received.

`scripts/dev` starts it on a free loopback port and points ORIGIN_URL at it,
so the gateway can be tried without any other service.
"""
from __future__ import annotations

import base64
import json

from aiohttp import web


async def _echo(request: web.Request) -> web.Response:
    body = await request.read()
    try:
        text: str | None = body.decode("utf-8")
        encoded = None
    except UnicodeDecodeError:
        text, encoded = None, base64.b64encode(body).decode()
    payload = {
        "method": request.method,
        "path": request.path,
        "query": request.query_string,
        "args": {k: request.query.getall(k) for k in request.query.keys()},
        "headers": {k.lower(): v for k, v in request.headers.items()},
        "body": text,
        "body_base64": encoded,
    }
    return web.Response(text=json.dumps(payload, indent=1), content_type="application/json",
                        headers={"x-echo-origin": "localedge"})


class EchoOrigin:
    """`async with EchoOrigin() as origin: origin.url`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host, self.port = host, port
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> "EchoOrigin":
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", _echo)
        # It takes whatever the edge forwards: request heads up to the edge's own bound.
        from src.localedge.server import MAX_HEADER_BYTES
        big = MAX_HEADER_BYTES
        self._runner = web.AppRunner(app, access_log=None, max_line_size=big, max_field_size=big, max_headers=4096)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://{self.host}:{self.port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> "EchoOrigin":
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.stop()
