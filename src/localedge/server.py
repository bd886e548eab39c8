"""The HTTP front: every request becomes `Default.fetch(request)`.

- The client IP comes from the socket into `cf-connecting-ip` (and is
  appended to `x-forwarded-for`, as Cloudflare does); client-sent `cf-*`
  headers are dropped first, so a client cannot claim another IP or forge
  Cloudflare's own headers (developers.cloudflare.com/fundamentals/reference/
  http-headers/).
- An exception (or a non-Response) from the Worker is a 500 with a generic
  body, like Cloudflare's error 1101; the traceback goes to the runtime log.
- `GET /__scheduled?cron=<expr>` runs `scheduled`, like
  `wrangler dev --test-scheduled`.
- Header values reach the Worker as workerd hands them over: the bytes decoded
  as UTF-8, a byte sequence that is not UTF-8 as U+FFFD (cloudflare/workerd
  src/workerd/jsg/util.h `v8Str` "interpreted as UTF-8", used for every header
  string; src/workerd/api/headers.c++ "we encode header strings as UTF-8").
- What workerd's HTTP parser (capnproto kj/compat/http.c++) answers itself,
  before any Worker runs: a method outside its fixed list (`BREW`, lower-case
  `get`) 501, request headers over 128 KiB in all 431, a malformed header
  section 400. Here those answers are problem+json (workerd's are plain text).
- `Expect: 100-continue`: the interim 100 is sent when the Worker first reads
  the body (RFC 9110 section 10.1.1), so a client waiting for it never stalls.
Uses aiohttp's low-level server (no router, no middlewares) to keep the
per-request overhead small.
"""
from __future__ import annotations

import json
import logging
import secrets
import time
from typing import TYPE_CHECKING, Any

from aiohttp import http_exceptions, web
from aiohttp.web_protocol import RequestHandler
from multidict import CIMultiDict
from workers import Request, Response
from workers.headers import JsHeaders
from workers.request import JsRequest

if TYPE_CHECKING:
    from src.localedge.runtime import LocalEdge

log = logging.getLogger("localedge.server")

_NO_FORWARD = frozenset(("content-length", "transfer-encoding", "connection", "keep-alive"))
_ERROR_BODY = b"Worker threw exception"
# Request body limit of the Free and Pro plans (developers.cloudflare.com/workers/platform/limits/#request-limits).
MAX_BODY = 100 * 1024 * 1024


# kj's HttpMethod list (capnproto c++/src/kj/compat/http.h KJ_HTTP_FOR_EACH_METHOD, read at
# 2c27095, May 2026), matched case-sensitively by consumeHttpMethod(); anything else is
# "501 Not Implemented" before the Worker runs. CONNECT is kj's own path: not served here.
KJ_METHODS = frozenset((
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "PURGE", "OPTIONS", "TRACE",
    "COPY", "LOCK", "MKCOL", "MOVE", "PROPFIND", "PROPPATCH", "SEARCH", "UNLOCK", "ACL",
    "REPORT", "MKACTIVITY", "CHECKOUT", "MERGE", "MSEARCH", "NOTIFY", "SUBSCRIBE", "UNSUBSCRIBE",
    "QUERY", "BAN"))
# Where real workerd answers 431 "message head is too large": measured on workerd 1.20261117.1
# under wrangler dev (2026-12-01), a request head of 491,201 bytes reached the Worker and one of
# 491,216 did not (480 KiB, less the few headers wrangler's proxy adds); 200 KiB in one header
# passed. Cloudflare's front line may refuse less: this is workerd's bound, the referee's.
MAX_HEADER_BYTES = 480 * 1024


def _is_internal(name: str) -> bool:
    return name.startswith("cf-")


def problem_response(status: int, title: str, detail: str) -> web.Response:
    """A runtime-level problem+json answer (the Worker never ran); the connection is closed."""
    body = json.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail})
    resp = web.Response(status=status, text=body, content_type="application/problem+json")
    resp.force_close()
    return resp


def workerd_header(value: str) -> str:
    """A header value as workerd gives it to the Worker: aiohttp decoded the bytes as UTF-8
    with surrogateescape; workerd decodes them as UTF-8 with U+FFFD for what is not UTF-8."""
    if value.isascii():
        return value
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


# `/__scheduled` is wrangler dev's route for JavaScript Workers; miniflare's own route, the one
# that runs a Python Worker's `scheduled` under wrangler dev, is `/cdn-cgi/local/scheduled`
# (scripts/workerd/dev.py): both work here, so one curl line works on both runtimes.
SCHEDULED_PATHS = frozenset(("/__scheduled", "/cdn-cgi/local/scheduled"))


class _EdgeRequestHandler(RequestHandler):
    """aiohttp's connection handler with workerd's answers to what its parser refuses."""

    def handle_error(self, request: Any, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if status == 500 or not isinstance(exc, http_exceptions.HttpProcessingError):
            return super().handle_error(request, status, exc, message)
        log.info("refused a request the HTTP parser could not read: %s", exc)
        if isinstance(exc, http_exceptions.BadHttpMethod):
            return problem_response(501, "Not Implemented", "Unrecognized request method.")
        if isinstance(exc, http_exceptions.LineTooLong) or "headers" in str(exc).lower() and "more than" in str(exc):
            return problem_response(431, "Request Header Fields Too Large", "header too large.")
        return problem_response(400, "Bad Request", "The headers sent by your client are not valid.")


class _EdgeHttpServer(web.Server):
    def __call__(self) -> RequestHandler:
        return _EdgeRequestHandler(self, loop=self._loop, **self._kwargs)


class EdgeServer:
    def __init__(self, edge: "LocalEdge") -> None:
        self.edge = edge
        self._runner: web.ServerRunner | None = None
        self.port = 0
        self.requests = 0
        self.errors = 0
        self._ray_prefix = secrets.token_hex(4)  # cf-ray: unique per request, no syscall per request
        self._ray = 0

    async def start(self, host: str, port: int) -> int:
        # One header may be as large as all of them together (kj has no per-line limit).
        server = _EdgeHttpServer(self._handle, access_log=None, handler_cancellation=False,
                                 max_line_size=MAX_HEADER_BYTES, max_field_size=MAX_HEADER_BYTES, max_headers=4096)
        # in-flight requests get 5 s to finish at shutdown (aiohttp's default is 60 s)
        self._runner = web.ServerRunner(server, access_log=None, shutdown_timeout=5.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, reuse_address=True, backlog=1024)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            t = time.monotonic()
            await self._runner.cleanup()
            log.info("HTTP server closed in %.2f s", time.monotonic() - t)
            self._runner = None

    # Connection-level headers workerd's HTTP server consumes and never hands a Worker (seen on
    # workerd 1.20261117.1 under wrangler dev: a Worker echoing its request headers got none of
    # these, but did get the headers `Connection` named, and Proxy-*). Real workerd is the referee.
    CONNECTION_LEVEL = frozenset(("connection", "keep-alive", "te", "upgrade", "trailer", "transfer-encoding"))

    def _to_request(self, req: web.BaseRequest) -> Request:
        peer = req.transport.get_extra_info("peername") if req.transport is not None else None
        ip = peer[0] if peer else "127.0.0.1"
        headers = JsHeaders()
        pairs = headers.raw_pairs()
        xff = None
        for name, value in req.headers.items():
            lname = name.lower()
            if lname[:3] == "cf-" or lname in self.CONNECTION_LEVEL:
                continue
            value = workerd_header(value)
            if lname == "x-forwarded-for":
                xff = value if xff is None else f"{xff}, {value}"
                continue
            pairs.append((lname, value.strip()))
        pairs.append(("cf-connecting-ip", ip))
        pairs.append(("x-forwarded-for", f"{xff}, {ip}" if xff else ip))
        self._ray += 1
        pairs.append(("cf-ray", f"{self._ray_prefix}{self._ray:08x}-LCL"))
        host = req.host or f"127.0.0.1:{self.port}"
        url = f"http://{host}{req.raw_path}"
        reader = req.content.read if req.body_exists else None  # no 1 MiB cap: see MAX_BODY
        if reader is not None and req.headers.get("expect", "").lower() == "100-continue" and req.version >= (1, 1):
            reader = _continue_then(req, reader)
        return Request(JsRequest(req.method, url, headers, b"" if reader is None else None, reader=reader))

    async def _handle(self, req: web.BaseRequest) -> web.StreamResponse:
        self.requests += 1
        if req.method not in KJ_METHODS:
            return problem_response(501, "Not Implemented", "Unrecognized request method.")
        if sum(len(k) + len(v) + 4 for k, v in req.raw_headers) + len(req.raw_path) > MAX_HEADER_BYTES:
            return problem_response(431, "Request Header Fields Too Large", "header too large.")
        if (req.content_length or 0) > MAX_BODY:
            return web.Response(status=413, text=f"request body over {MAX_BODY} bytes (Cloudflare's limit)\n")
        if req.path in SCHEDULED_PATHS and self.edge.test_scheduled:
            return await self._scheduled(req)
        try:
            request = self._to_request(req)
            response = await self.edge.dispatch_fetch(request)
            if not isinstance(response, Response):
                raise TypeError(f"fetch() returned {type(response).__name__}, expected a workers.Response")
            return _to_web(response)
        except Exception:
            self.errors += 1
            log.error("uncaught exception in the Worker for %s %s", req.method, req.path_qs, exc_info=True)
            return web.Response(status=500, body=_ERROR_BODY, content_type="text/plain")

    async def _scheduled(self, req: web.BaseRequest) -> web.Response:
        cron = req.query.get("cron", "")
        raw_time = req.query.get("time")
        try:
            when = int(raw_time) if raw_time else None
        except ValueError:
            return web.Response(status=400, text=f"time must be epoch milliseconds, got {raw_time!r}\n")
        try:
            outcome = await self.edge.scheduled(cron, when)
        except Exception:
            log.error("scheduled(%r) raised", cron, exc_info=True)
            return web.Response(status=500, text="Scheduled handler threw an exception\n")
        if outcome is None:
            return web.Response(status=501, text="The Worker has no scheduled() handler\n")
        return web.Response(status=200, text="Ran scheduled event\n")


def _continue_then(req: web.BaseRequest, read: Any) -> Any:
    """The body reader, sending `100 Continue` first (once): the client waits for it."""
    async def reader() -> bytes:
        await req.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return await read()
    return reader


class _EdgeResponse(web.Response):
    """A web.Response that sends no Content-Type the Worker did not set (aiohttp adds
    application/octet-stream to any body; workerd sends the Worker's headers as they are)."""

    async def _prepare_headers(self) -> None:
        had_type = "Content-Type" in self._headers
        await super()._prepare_headers()
        if not had_type:
            self._headers.popall("Content-Type", None)


def _to_web(response: Response) -> web.Response:
    js = response.js_object
    headers: CIMultiDict[str] = CIMultiDict()
    for name, value in js.headers.entries():
        if name not in _NO_FORWARD:
            headers.add(name, value)
    return _EdgeResponse(status=js.status, reason=js.statusText or None, body=js.body_bytes(), headers=headers)

