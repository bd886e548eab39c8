"""`workers.Response`, as the SDK defines it (response.py), on CPython.

`Response(body=None, status=None, status_text="", headers=None)`: the body is
str, bytes or None (other types: TypeError naming the type), headers a dict,
a list of pairs or a Headers; a str body gets `text/plain;charset=UTF-8` as JS
does. `Response.json(obj, status=..., headers=...)` used on the class builds a
JSON response (the SDK's static use of `json`); `await resp.json()` on an
instance parses the body. The body can be read once.
"""
from __future__ import annotations

import json as _json
from http import HTTPStatus
from typing import Any, Never

from .headers import JsHeaders, to_http_message, to_js_headers

NULL_BODY_STATUSES = frozenset((101, 103, 204, 205, 304))


class JsResponse:
    """The JS Response object (`response.js_object`)."""

    __slots__ = ("status", "statusText", "headers", "_body", "url", "redirected", "type", "bodyUsed")

    def __init__(self, status: int, status_text: str, headers: JsHeaders, body: bytes | None,
                 url: str = "", redirected: bool = False, type_: str = "default") -> None:
        self.status = status
        self.statusText = status_text
        self.headers = headers
        self._body = body
        self.url = url
        self.redirected = redirected
        self.type = type_
        self.bodyUsed = False

    @property
    def ok(self) -> bool:
        return 200 <= self.status <= 299

    def body_bytes(self) -> bytes | None:
        """The body without consuming it (the runtime writing it to the socket)."""
        return self._body


class FetchResponse:
    """pyodide.http.FetchResponse + the SDK's additions."""

    _js: JsResponse

    @property
    def js_object(self) -> JsResponse:
        return self._js

    @property
    def js_response(self) -> JsResponse:
        return self._js

    @property
    def headers(self):
        return to_http_message(self._js.headers)

    @property
    def status(self) -> int:
        return self._js.status

    @property
    def status_text(self) -> str:
        return self._js.statusText

    @property
    def ok(self) -> bool:
        return self._js.ok

    @property
    def url(self) -> str:
        return self._js.url

    @property
    def redirected(self) -> bool:
        return self._js.redirected

    @property
    def type(self) -> str:
        return self._js.type

    @property
    def body_used(self) -> bool:
        return self._js.bodyUsed

    def _raise_if_failed(self) -> None:
        if self._js.bodyUsed:
            raise OSError("Body already used")

    def raise_for_status(self) -> None:
        if self.status >= 400:
            raise OSError(f"{self.status} Error: {self.status_text} for url: {self.url}")

    async def buffer(self) -> bytes:
        self._raise_if_failed()
        self._js.bodyUsed = True
        return self._js._body or b""

    async def bytes(self) -> bytes:
        return await self.buffer()

    async def text(self) -> str:
        return (await self.buffer()).decode("utf-8", "replace")

    async def _json_body(self, **kwargs: Any) -> Any:
        return _json.loads(await self.text(), **kwargs)

    def clone(self) -> "Response":
        self._raise_if_failed()
        js = self._js
        return Response(JsResponse(js.status, js.statusText, JsHeaders(js.headers), js._body,
                                   js.url, js.redirected, js.type))

    @staticmethod
    def redirect(url: str, status: HTTPStatus | int = HTTPStatus.FOUND) -> "Response":
        code = status.value if isinstance(status, HTTPStatus) else status
        if code not in (301, 302, 303, 307, 308):
            raise ValueError(f"Invalid status code {code} for a redirect")
        return Response(None, status=code, headers=[("location", url)])

    @staticmethod
    def from_json(data: Any, status: HTTPStatus | int = HTTPStatus.OK, status_text: str = "",
                  headers: Any = None) -> "Response":
        h = to_js_headers(headers) if headers else JsHeaders()
        if not h.has("content-type"):
            h.set("content-type", "application/json")
        return Response(_json.dumps(data), status=status, status_text=status_text, headers=h)

    def json(self, *args: Never, **kwargs: Never):
        if isinstance(self, FetchResponse):
            return self._json_body()
        # Static use `Response.json(obj, ...)` means from_json, as in the SDK.
        return Response.from_json(self, *args, **kwargs)


class Response(FetchResponse):
    def __init__(self, body: Any = None, status: HTTPStatus | int | None = None, status_text: str = "",
                 headers: Any = None, web_socket: Any = None) -> None:
        if isinstance(body, JsResponse):
            if status is not None or status_text or headers is not None:
                raise ValueError("Expected no options when constructing Response from a js.Response")
            self._js = body
            return
        if body is not None and not isinstance(body, (str, bytes)):
            raise TypeError(f"Unsupported type in Response: {type(body).__name__}")
        code = 200
        if status:
            code = status.value if isinstance(status, HTTPStatus) else int(status)
        if not 200 <= code <= 599:
            raise ValueError(f"Failed to construct 'Response': The status provided ({code}) is outside the range [200, 599].")
        h = JsHeaders(headers) if headers else JsHeaders()
        if isinstance(body, str):
            if not h.has("content-type"):
                h.append("content-type", "text/plain;charset=UTF-8")
            data: bytes | None = body.encode("utf-8")
        else:
            data = body
        if data is not None and code in NULL_BODY_STATUSES:
            raise TypeError("Response with null body status cannot have body")
        self._js = JsResponse(code, str(status_text), h, data)

    def __repr__(self) -> str:
        parts = [f"status={self.status}"]
        if self._js.statusText:
            parts.append(f"status_text={self.status_text!r}")
        ct = self._js.headers.get("content-type")
        if ct:
            parts.append(f"content_type={ct!r}")
        if self._js.url:
            parts.append(f"url={self._js.url!r}")
        return f"Response({', '.join(parts)})"
