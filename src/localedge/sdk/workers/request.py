"""`workers.Request`: the SDK's Python view over a JS Request, on CPython.

As in the SDK (request.py): `.method` is `HTTPMethod[js.method]` (a KeyError
for an extension method such as PURGE), `.headers` is a fresh
`HTTPMessageMapping` on every access, the body can be read once
(`OSError("Body already used")` after that), and `.js_object` exposes the
JS-side fields (`.method` as a str, `.url`, `.headers`).
"""
from __future__ import annotations

import json
from http import HTTPMethod
from typing import Any, Awaitable, Callable

from .headers import JsHeaders, to_http_message

# The Fetch standard upper-cases only these methods; others keep their case.
_NORMALIZED = frozenset(("DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"))


def normalize_method(method: Any) -> str:
    if isinstance(method, HTTPMethod):
        return method.value
    text = str(method)
    upper = text.upper()
    return upper if upper in _NORMALIZED else text


def body_bytes(body: Any) -> bytes | None:
    if body is None:
        return None
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body)
    raise TypeError(f"Unsupported body type: {type(body).__name__}")


class JsRequest:
    """The JS Request object (`request.js_object`)."""

    __slots__ = ("method", "url", "headers", "redirect", "_body", "_reader", "bodyUsed", "cf")

    def __init__(self, method: str, url: str, headers: JsHeaders, body: bytes | None = None,
                 reader: Callable[[], Awaitable[bytes]] | None = None, redirect: str = "follow",
                 cf: Any = None) -> None:
        self.method = method
        self.url = url
        self.headers = headers
        self.redirect = redirect
        self._body = body
        self._reader = reader
        self.bodyUsed = False
        self.cf = cf

    async def arrayBuffer(self) -> bytes:
        if self.bodyUsed:
            raise TypeError("Body has already been used. It can only be used once.")
        self.bodyUsed = True
        if self._reader is not None:
            data = await self._reader()
            self._reader = None
            return data
        return self._body or b""

    async def text(self) -> str:
        return (await self.arrayBuffer()).decode("utf-8", "replace")

    def peek_body(self) -> bytes | None:
        return self._body


class Request:
    def __init__(self, input: "Request | str | JsRequest", **other_options: Any) -> None:
        if isinstance(input, JsRequest):
            if other_options:
                raise ValueError("Expected no options when constructing Request from a js.Request")
            self._js_request = input
            return
        base = input._js_request if isinstance(input, Request) else None
        method = normalize_method(other_options.pop("method", base.method if base else "GET"))
        if "headers" in other_options:
            headers = JsHeaders(other_options.pop("headers"))
        else:
            headers = JsHeaders(base.headers) if base else JsHeaders()
        body = body_bytes(other_options.pop("body", None))
        if body is None and base is not None:
            body = base.peek_body()
        if body is not None and method in ("GET", "HEAD"):
            raise TypeError("Request with a GET or HEAD method cannot have a body.")
        if body is not None and isinstance(other_options.get("body"), str) and not headers.has("content-type"):
            headers.set("content-type", "text/plain;charset=UTF-8")
        redirect = other_options.pop("redirect", base.redirect if base else "follow")
        url = base.url if base else str(input)
        self._js_request = JsRequest(method, url, headers, body, redirect=redirect)

    def __repr__(self) -> str:
        return f"Request(method={self._js_request.method!r}, url={self._js_request.url!r})"

    @property
    def js_object(self) -> JsRequest:
        return self._js_request

    @property
    def body_used(self) -> bool:
        return self._js_request.bodyUsed

    @property
    def cf(self) -> Any:
        return self._js_request.cf

    @property
    def headers(self):
        return to_http_message(self._js_request.headers)

    @property
    def method(self) -> HTTPMethod:
        return HTTPMethod[self._js_request.method]

    @property
    def redirect(self) -> str:
        return self._js_request.redirect

    @property
    def url(self) -> str:
        return self._js_request.url

    def _raise_if_failed(self) -> None:
        if self.body_used:
            raise OSError("Body already used")

    async def buffer(self) -> bytes:
        self._raise_if_failed()
        return await self._js_request.arrayBuffer()

    async def bytes(self) -> bytes:
        self._raise_if_failed()
        return await self.buffer()

    async def text(self) -> str:
        self._raise_if_failed()
        return await self._js_request.text()

    async def json(self, **kwargs: Any) -> Any:
        self._raise_if_failed()
        return json.loads(await self.text(), **kwargs)

    def clone(self) -> "Request":
        if self.body_used:
            raise OSError("Body already used")
        js = self._js_request
        return Request(JsRequest(js.method, js.url, JsHeaders(js.headers), js.peek_body(),
                                 redirect=js.redirect, cf=js.cf))
