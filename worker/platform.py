"""The Worker's only adapter to the platform: env vars, the incoming request,
the outgoing response and the outbound fetch to the origin.

Why one module: everything else in worker/ sees plain Python values (str,
bytes, lists of header pairs), so it runs unchanged on Cloudflare's SDK
(Pyodide) and on the local runtime's `workers` shim (CPython). JS values are
duck-typed (`to_py`, `getReader`); the one `js` import builds the outgoing
Response directly on the edge (see `response`).

What the real SDK does (workers-runtime-sdk 1.9.5, see docs/architecture.md):
- `request.method` is `HTTPMethod[...]` and raises for extension methods, so
  the method is read from `request.js_object.method` (a str);
- `request.headers` builds a new `HTTPMessageMapping` on every access (an
  `http.client.HTTPMessage`, slow to fill), so the JS Headers behind it
  (`request.js_object.headers`) are iterated once instead, as the SDK does;
- `workers.fetch` wraps `pyodide.http.pyfetch`, which raises `OSError` when
  the network fails (the JS fetch rejected); the local shim does the same;
- `Response(body)` accepts str, bytes, None or a JS ReadableStream.
"""
from __future__ import annotations

import asyncio
import json
from typing import Any, Iterable

try:            # Pyodide (Cloudflare, the conformance harness)
    from js import JSON as _JSON
    from js import Array as _JsArray
    from js import Object as _JsObject
    from js import Response as _JsResponse
    from pyodide.ffi import to_js as _to_js
except ImportError:     # CPython: the local runtime's `workers` shim builds responses
    _JsResponse = None

HeaderList = list[tuple[str, str]]

# Statuses whose response must not carry a body (Fetch spec "null body status"):
# a JS Response constructed with a body for these throws a TypeError.
NULL_BODY_STATUSES = frozenset((101, 103, 204, 205, 304))


class OriginTimeout(Exception):
    """The origin did not answer within ORIGIN_TIMEOUT_MS."""


class OriginUnreachable(Exception):
    """The origin could not be reached (DNS, refused, reset, TLS...)."""


# ----------------------------------------------------------------- env
def env_value(env: Any, name: str) -> Any:
    """A var or secret as a Python value: strings stay strings, JS objects
    (an object var such as `[vars.TOLLGATE]`) become dicts via `to_py`."""
    value = getattr(env, name, None)
    if value is None:
        return None
    to_py = getattr(value, "to_py", None)
    if callable(to_py):
        return to_py()
    return value


def env_source(env: Any) -> Any:
    """The platform's own env object behind `env`, or None when there is none to compare.

    On Cloudflare `self.env` is a new SDK `_EnvWrapper` per request around the one JS
    env object of the isolate (workers-runtime-sdk entrypoints.py `_wrap_class`); its
    proxy compares with `===`, so "same JS env" is one comparison instead of reading
    every watched var through the wrapper (33 µs per request on Pyodide). If the SDK
    ever stops keeping it in `_env`, this returns None and the vars are compared.
    """
    if type(env).__name__ != "_EnvWrapper":
        return None
    return getattr(env, "_env", None)


def env_raw(env: Any, name: str) -> Any:
    """A var exactly as the platform hands it over (no conversion): cheap to
    read on every request, used to notice that the configuration changed."""
    return getattr(env, name, None)


# ----------------------------------------------------------------- request
class Incoming:
    """What the pipeline needs from a request, read once as plain values.

    `header_items` keeps every header line (lower-case names) for forwarding;
    `headers` is a dict for lookups, repeated names joined with ", ".
    """

    __slots__ = ("method", "url", "headers", "header_items", "_request")

    def __init__(self, request: Any) -> None:
        self._request = request
        js_object = getattr(request, "js_object", None)
        # request.method would raise KeyError for an extension method (HTTPMethod[...]).
        method = js_object.method if js_object is not None else request.method
        # As the platform normalised it (fetch upper-cases the standard methods only; others are case-sensitive).
        self.method: str = method if isinstance(method, str) else str(getattr(method, "value", method))
        self.url: str = str(js_object.url if js_object is not None else request.url)
        # The JS Headers' own iteration, as the SDK reads them (utils._js_headers_to_http_message):
        # `request.headers` would build an http.client.HTTPMessage first, on every access.
        pairs = js_headers(js_object.headers) if js_object is not None else request.headers.items()
        items: HeaderList = []
        headers: dict[str, str] = {}
        for name, value in pairs:
            name = name.lower()
            items.append((name, value))
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        self.header_items = items
        self.headers = headers

    async def body(self) -> bytes:
        """The request body (empty for none)."""
        data = await self._request.bytes()
        return bytes(data) if data else b""


def js_headers(headers: Any) -> Any:
    """A JS Headers' [name, value] pairs in one crossing: the same iteration (`Array.from`),
    handed over as one JSON text. Iterating the proxy from Python crossed the boundary three
    times per header (next, name, value): about 5 us more per request on Pyodide
    (scripts/bench workerd, 2026-12-01). Header values are valid strings (workerd decodes them
    as UTF-8), so the JSON round trip returns exactly what iteration would."""
    if _JsResponse is None:
        return headers
    return json.loads(_JSON.stringify(_JsArray.from_(headers)))


# ----------------------------------------------------------------- response
def response(status: int, headers: HeaderList, body: Any = None) -> Any:
    """A platform Response; headers as a list of pairs keeps repeated names (Set-Cookie).
    `body`: bytes, str, None or (on the edge) the origin's ReadableStream."""
    if status in NULL_BODY_STATUSES or (isinstance(body, (bytes, str)) and not body):
        body = None
    if _JsResponse is not None:
        # The JS Response itself, in one conversion: `workers.Response` checks types, wraps
        # and re-reads it, which measured about 0.25 ms of the Worker's CPU per request
        # (tests/conformance). workerd's wrapper_func passes a JS value through python_to_rpc
        # unchanged (to_js of a JsProxy is the proxy). Headers as [name, value] pairs, as the
        # SDK hands them to `new Headers(...)`, so repeated names (Set-Cookie) survive.
        init = _to_js({"status": status, "headers": headers}, dict_converter=_JsObject.fromEntries)
        return _JsResponse.new(_to_js(body) if isinstance(body, bytes) else body, init)
    import workers  # here, not at import: `scripts/check` and the build step read settings on a bare python3
    return workers.Response(body, status=status, headers=headers)


# ----------------------------------------------------------------- outbound fetch
class OriginResponse:
    """The origin's answer. `streamed`: `body` is the edge's ReadableStream, passed
    through unread; otherwise `body` is the complete bytes."""

    __slots__ = ("status", "header_items", "body", "streamed")

    def __init__(self, status: int, header_items: HeaderList, body: Any, streamed: bool) -> None:
        self.status = status
        self.header_items = header_items
        self.body = body
        self.streamed = streamed


async def _fetch(url: str, method: str, headers: HeaderList, body: bytes | None) -> OriginResponse:
    options: dict[str, Any] = {"method": method, "headers": headers, "redirect": "manual"}
    if body:
        options["body"] = body
    import workers
    reply = await workers.fetch(url, **options)
    status = int(reply.status)
    items: HeaderList = [(name.lower(), value) for name, value in reply.headers.items()]
    if status in NULL_BODY_STATUSES or method == "HEAD":
        return OriginResponse(status, items, None, False)
    stream = getattr(reply, "body", None)
    if stream is not None and hasattr(stream, "getReader"):
        # On the edge: hand the origin's ReadableStream to our Response, no buffering.
        return OriginResponse(status, items, stream, True)
    data = await reply.bytes()
    return OriginResponse(status, items, bytes(data) if data else b"", False)


async def fetch_origin(url: str, method: str, headers: Iterable[tuple[str, str]], body: bytes | None,
                       timeout_s: float) -> OriginResponse:
    """Forward one request; redirects are passed back to the client, not followed.

    Raises OriginTimeout after `timeout_s` and OriginUnreachable when the fetch
    itself failed.
    """
    try:
        # asyncio.timeout (3.11+) cancels in place; wait_for would wrap the fetch in another Task.
        async with asyncio.timeout(timeout_s):
            return await _fetch(url, method, list(headers), body)
    except TimeoutError:
        raise OriginTimeout(f"no answer from the origin within {timeout_s:g} s") from None
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # OSError from pyfetch/the shim; anything else is no better than unreachable
        raise OriginUnreachable(f"{type(exc).__name__}: {exc}") from None
