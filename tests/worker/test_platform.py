"""worker/platform.py: what the Worker reads from the platform and hands back to it.

(tests/worker/ has no __init__.py on purpose: as a package named `worker` it would shadow the
Worker under pytest's rootdir imports.)
"""
from __future__ import annotations

from src.localedge.sdk import install

install()   # `import workers` finds the local runtime's SDK, as the runtime provides it

import asyncio
from types import SimpleNamespace

import pytest
import workers

from worker import platform
from worker.platform import Incoming, OriginTimeout, OriginUnreachable, env_source, env_value, fetch_origin


class _JsRequest:
    """A request as the SDK wraps it: `js_object` is the JS Request (method a str, Headers as pairs)."""

    def __init__(self, method: str, url: str, headers: list[tuple[str, str]], body: bytes = b"") -> None:
        self.js_object = SimpleNamespace(method=method, url=url, headers=headers)
        self._body = body

    @property
    def method(self):
        raise KeyError("HTTPMethod has no extension methods")   # what the real SDK's request.method does

    async def bytes(self) -> bytes:
        return self._body


def test_an_extension_method_and_repeated_headers_are_read_as_sent():
    request = _JsRequest("PURGE", "https://api.test/v1/x?q=1",
                         [("X-Api-Key", "k"), ("Accept", "a/b"), ("accept", "c/d")], b"payload")
    incoming = Incoming(request)
    assert (incoming.method, incoming.url) == ("PURGE", "https://api.test/v1/x?q=1")
    assert incoming.headers["accept"] == "a/b, c/d" and incoming.headers["x-api-key"] == "k"
    assert incoming.header_items == [("x-api-key", "k"), ("accept", "a/b"), ("accept", "c/d")]
    assert asyncio.run(incoming.body()) == b"payload"
    assert asyncio.run(Incoming(_JsRequest("GET", "https://api.test/", [])).body()) == b""


def test_env_values_convert_js_objects_and_only_the_sdk_wrapper_has_a_source():
    js_object = SimpleNamespace(to_py=lambda: {"rules": []})
    env = SimpleNamespace(TOLLGATE=js_object, ORIGIN_URL="https://o.test")
    assert env_value(env, "TOLLGATE") == {"rules": []} and env_value(env, "ORIGIN_URL") == "https://o.test"
    assert env_value(env, "MISSING") is None
    assert env_source(env) is None                  # a plain env: its vars are compared instead
    wrapper = type("_EnvWrapper", (), {})()
    wrapper._env = env
    assert env_source(wrapper) is env


def test_a_response_keeps_repeated_headers_and_drops_a_body_where_http_forbids_one():
    answer = platform.response(200, [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")], b"hi")
    assert answer.status == 200 and [v for k, v in answer.headers.items() if k.lower() == "set-cookie"] == ["a=1", "b=2"]
    for status in (204, 304):
        assert asyncio.run(platform.response(status, [], b"not allowed").bytes()) == b""


def _fake_fetch(monkeypatch, behaviour):
    calls = []

    async def fetch(url, **options):
        calls.append((url, options))
        return await behaviour()
    monkeypatch.setattr(workers, "fetch", fetch)
    return calls


def test_the_origin_is_fetched_without_following_redirects_and_its_body_read(monkeypatch):
    async def answer():
        return workers.Response(b"moved", status=302, headers=[("Location", "/elsewhere")])
    calls = _fake_fetch(monkeypatch, answer)
    got = asyncio.run(fetch_origin("https://o.test/x", "POST", [("x-a", "1")], b"body", 5))
    assert (got.status, got.body, got.streamed) == (302, b"moved", False)
    assert ("location", "/elsewhere") in got.header_items
    assert calls == [("https://o.test/x", {"method": "POST", "headers": [("x-a", "1")], "redirect": "manual",
                                          "body": b"body"})]


def test_a_head_answer_has_no_body(monkeypatch):
    async def answer():
        return workers.Response(None, status=200, headers=[("Content-Length", "12")])
    _fake_fetch(monkeypatch, answer)
    assert asyncio.run(fetch_origin("https://o.test/x", "HEAD", [], None, 5)).body is None


def test_a_silent_origin_is_a_timeout_and_a_failed_fetch_unreachable(monkeypatch):
    async def never():
        await asyncio.sleep(3600)
    _fake_fetch(monkeypatch, never)
    with pytest.raises(OriginTimeout, match="within 0.05 s"):
        asyncio.run(fetch_origin("https://o.test/x", "GET", [], None, 0.05))

    async def refused():
        raise OSError("connection refused")
    _fake_fetch(monkeypatch, refused)
    with pytest.raises(OriginUnreachable, match="OSError: connection refused"):
        asyncio.run(fetch_origin("https://o.test/x", "GET", [], None, 5))
