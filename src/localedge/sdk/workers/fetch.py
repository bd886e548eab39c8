"""`workers.fetch`: real outbound HTTP with aiohttp, shaped like the SDK's.

The SDK (fetch.py) hands the options to JS `fetch` through pyodide's
`pyfetch`, which turns a network failure into `OSError`. Here one
`aiohttp.ClientSession` per event loop (created on first use, closed by the
runtime at shutdown) does the request; the body is read before returning so
`await resp.bytes()` is a plain read. Like JS fetch: no automatic
User-Agent/Accept/Accept-Encoding/Content-Type is added, a str body is sent as
`text/plain;charset=UTF-8`, the body is left as the origin encoded it (the
`content-encoding` header stays true), `redirect="manual"` returns 3xx as is.
"""
from __future__ import annotations

import asyncio
import weakref
from http import HTTPMethod
from typing import Any

import aiohttp
from yarl import URL

from .headers import JsHeaders
from .request import Request, body_bytes, normalize_method
from .response import JsResponse, Response

_sessions: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession]" = weakref.WeakKeyDictionary()
# Headers the HTTP client computes itself (JS fetch forbids or recomputes them too).
_CLIENT_OWNED = frozenset(("host", "content-length", "transfer-encoding", "connection", "keep-alive"))
_SKIP_AUTO = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")

# Counts outbound fetches (subrequests) for the benchmarks and tests.
stats = {"fetches": 0}
# What the platform sets on every subrequest, whatever the Worker sent: Cloudflare replaces
# CF-Connecting-IP and adds CF-Worker (the zone); wrangler dev does the same with the zone
# `<worker name>.example.com` (miniflare's outbound worker, strippedHeaders). The runtime sets
# the zone at start (LocalEdge); None leaves the headers alone (the SDK used on its own).
platform = {"cf_worker_zone": None}


def _session() -> aiohttp.ClientSession:
    loop = asyncio.get_running_loop()
    session = _sessions.get(loop)
    if session is None or session.closed:
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
        session = aiohttp.ClientSession(connector=connector, auto_decompress=False,
                                        skip_auto_headers=_SKIP_AUTO,
                                        timeout=aiohttp.ClientTimeout(total=None))
        _sessions[loop] = session
    return session


async def close_sessions() -> None:
    """Close this loop's client session (the runtime calls it at shutdown)."""
    loop = asyncio.get_running_loop()
    session = _sessions.pop(loop, None)
    if session is not None and not session.closed:
        await session.close()


_SINGLE_DOT = frozenset((".", "%2e"))
_DOUBLE_DOT = frozenset(("..", ".%2e", "%2e.", "%2e%2e"))


def whatwg_path(path: str) -> str:
    """The path as JS fetch sends it: the URL Standard's path parser resolves `.` and `..`
    segments (also written `%2e`), and keeps everything else as written: empty segments
    (`//`) and the case of percent-escapes (`%ff`). What real workerd sent an origin
    (`/v1/%2e%2e/x` -> `/x`, `/a/./b/../c` -> `/a/c`, `//a` kept, `%ff` kept) is in
    ../shared/reference/workerd-offline.md; yarl would instead drop `//` and upper-case `%ff`."""
    if "." not in path and "%2e" not in path.lower():
        return path
    out: list[str] = []
    segments = path.split("/")[1:]
    for i, segment in enumerate(segments):
        lower = segment.lower()
        last = i == len(segments) - 1
        if lower in _DOUBLE_DOT:
            if out:
                out.pop()
            if last:
                out.append("")
        elif lower in _SINGLE_DOT:
            if last:
                out.append("")
        else:
            out.append(segment)
    return "/" + "/".join(out)


def wire_url(url: str) -> "URL | str":
    """`url` for aiohttp exactly as JS fetch would put it on the wire (see `whatwg_path`)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    slash = rest.find("/")
    if slash < 0:
        return url
    target, _, fragment = rest[slash:].partition("#")
    path, q, query = target.partition("?")
    try:
        return URL(f"{scheme}://{rest[:slash]}{whatwg_path(path)}{q}{query}", encoded=True)
    except ValueError:
        return url


async def fetch(resource: "str | Request", **options: Any) -> Response:
    if isinstance(resource, Request):
        base = resource.js_object
        url = base.url
        method = options.pop("method", base.method)
        headers_in: Any = options.pop("headers", None)
        headers = JsHeaders(headers_in) if headers_in is not None else JsHeaders(base.headers)
        body_opt = options.pop("body", None)
        body = body_bytes(body_opt) if body_opt is not None else base.peek_body()
        redirect = options.pop("redirect", base.redirect)
    else:
        url = str(resource)
        method = options.pop("method", "GET")
        headers_in = options.pop("headers", None)
        headers = JsHeaders(headers_in) if headers_in else JsHeaders()
        body_opt = options.pop("body", None)
        body = body_bytes(body_opt)
        redirect = options.pop("redirect", "follow")
    options.pop("cf", None)
    options.pop("fetcher", None)
    if options:
        raise TypeError(f"fetch() got unexpected options: {', '.join(sorted(options))}")
    method = normalize_method(method.value if isinstance(method, HTTPMethod) else method)
    if body is not None and method in ("GET", "HEAD"):
        raise TypeError("Request with a GET or HEAD method cannot have a body.")
    if isinstance(body_opt, str) and not headers.has("content-type"):
        headers.set("content-type", "text/plain;charset=UTF-8")
    if redirect not in ("follow", "manual", "error"):
        raise TypeError(f"fetch(): invalid redirect mode {redirect!r}")
    wire = [(k, v) for k, v in headers.raw_pairs() if k not in _CLIENT_OWNED]
    zone = platform["cf_worker_zone"]
    if zone is not None:
        wire = [(k, v) for k, v in wire if k not in ("cf-connecting-ip", "cf-worker")] + [("cf-worker", zone)]
    stats["fetches"] += 1
    try:
        async with _session().request(method, wire_url(url), headers=wire, data=body,
                                      allow_redirects=(redirect == "follow")) as resp:
            data = await resp.read()
            if redirect == "error" and 300 <= resp.status < 400:
                raise OSError(f"fetch(): redirect to {resp.headers.get('location')} with redirect='error'")
            out = JsHeaders()
            raw = out.raw_pairs()
            for k, v in resp.raw_headers:
                raw.append((k.decode("latin-1").lower(), v.decode("latin-1").strip()))
            return Response(JsResponse(resp.status, resp.reason or "", out, data, str(resp.url),
                                       bool(resp.history)))
    except aiohttp.ClientError as exc:
        # pyodide's pyfetch: a failed fetch raises OSError with the JS message.
        raise OSError(f"fetch to {url} failed: {type(exc).__name__}: {exc}") from None
    except ValueError as exc:  # aiohttp rejects a malformed URL with ValueError/InvalidURL
        raise OSError(f"fetch to {url!r} failed: {exc}") from None
