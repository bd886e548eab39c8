"""The local `workers` SDK behaves like Cloudflare's (workers-runtime-sdk 1.9.5)."""
from __future__ import annotations

from http import HTTPMethod

import pytest

from src.localedge import sdk
from tests.runtime.conftest import run

sdk.install()
from workers import HTTPMessageMapping, Request, Response  # noqa: E402
from workers.headers import JsHeaders  # noqa: E402
from workers.request import JsRequest  # noqa: E402


def _request(method: str, headers: list[tuple[str, str]], body: bytes = b"") -> Request:
    return Request(JsRequest(method, "http://h/p?q=1", JsHeaders(headers), body))


def test_request_method_is_httpmethod_and_extension_methods_raise_keyerror():
    assert _request("GET", []).method is HTTPMethod.GET
    purge = _request("PURGE", [])
    with pytest.raises(KeyError):
        purge.method
    assert purge.js_object.method == "PURGE"


def test_headers_are_an_http_message_mapping_with_js_semantics():
    req = _request("GET", [("X-B", " 2 "), ("x-a", "1"), ("X-A", "3"), ("Set-Cookie", "c=1"), ("set-cookie", "d=2")])
    h = req.headers
    assert isinstance(h, HTTPMessageMapping)
    assert h.get("X-A") == "1, 3" and h["x-b"] == "2"
    assert list(h.items()) == [("set-cookie", "c=1"), ("set-cookie", "d=2"), ("x-a", "1, 3"), ("x-b", "2")]
    h["x-new"] = "1"
    assert "x-new" not in req.headers  # a fresh view on each access, as in the SDK


def test_body_reads_once():
    async def body():
        req = _request("POST", [], b'{"a": 1}')
        assert await req.json() == {"a": 1}
        with pytest.raises(OSError, match="Body already used"):
            await req.text()
        resp = Response("hi")
        assert await resp.text() == "hi"
        with pytest.raises(OSError):
            await resp.bytes()
    run(body())


def test_response_constructor_and_static_json():
    r = Response("text")
    assert r.status == 200 and r.headers["content-type"] == "text/plain;charset=UTF-8"
    assert Response(b"x", status=404, headers={"X-A": "b"}).headers.items() == [("x-a", "b")]
    j = Response.json({"ok": True}, status=429, headers=[("retry-after", "3")])
    assert j.status == 429 and j.headers["content-type"] == "application/json"
    assert run(j.json()) == {"ok": True}
    with pytest.raises(TypeError, match="Unsupported type in Response: dict"):
        Response({"a": 1})
    with pytest.raises(TypeError, match="unexpected type for headers"):
        Response("x", headers=(("a", "b"),))
    with pytest.raises(TypeError, match="null body status"):
        Response("x", status=204)
    assert Response(None, status=204).status == 204
