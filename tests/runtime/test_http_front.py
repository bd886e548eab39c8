"""The HTTP front: client IP from the socket, internal headers, 500s, request/response shapes, fetch."""
from __future__ import annotations

import socket

import aiohttp
import pytest

from src.localedge.origin import EchoOrigin
from tests.runtime.conftest import edge, run


def test_cf_connecting_ip_comes_from_the_socket_and_client_copies_are_dropped(state):
    async def body():
        async with edge(state) as e, aiohttp.ClientSession() as s:
            forged = {"CF-Connecting-IP": "6.6.6.6", "CF-Ray": "forged", "CF-Worker": "evil.example",
                      "X-Forwarded-For": "10.0.0.1", "X-Api-Key": "k1"}
            async with s.get(f"{e.url}/headers", headers=forged) as r:
                data = await r.json()
        h = data["headers"]
        assert h["cf-connecting-ip"] == "127.0.0.1"
        assert h["cf-ray"] != "forged" and "cf-worker" not in h
        assert h["x-forwarded-for"] == "10.0.0.1, 127.0.0.1"
        assert h["x-api-key"] == "k1"  # other headers reach the Worker, names lower-cased
        assert list(h) == sorted(h)  # JS Headers iteration order
    run(body())


def test_uncaught_exception_is_a_generic_500_without_traceback(state, caplog):
    async def body():
        async with edge(state) as e, aiohttp.ClientSession() as s:
            async with s.get(f"{e.url}/boom") as r:
                assert r.status == 500
                text = await r.text()
        assert "secret internal detail" not in text and "Traceback" not in text
        assert text == "Worker threw exception"
    run(body())
    assert "secret internal detail" in caplog.text  # the traceback is in the runtime's log


def test_request_method_url_body_and_response_headers(state):
    async def body():
        async with edge(state) as e, aiohttp.ClientSession() as s:
            async with s.request("PURGE", f"{e.url}/headers?q=1") as r:
                data = await r.json()
                assert data["method"] == "PURGE"  # js_object.method keeps an extension method
                assert data["url"].endswith("/headers?q=1")
            async with s.post(f"{e.url}/echo", data=b"\x00binary\xff") as r:
                assert r.status == 201
                assert await r.read() == b"\x00binary\xff"
                assert r.headers["x-len"] == "8"
                assert r.headers.getall("set-cookie") == ["a=1", "b=2"]  # never joined
                assert "content-type" not in r.headers  # the Worker set none; none is invented
    run(body())


def test_outbound_fetch_reaches_the_origin_and_failures_are_oserror(state):
    async def body():
        async with EchoOrigin() as origin, edge(state, origin=origin.url) as e, aiohttp.ClientSession() as s:
            async with s.get(f"{e.url}/proxy") as r:
                assert r.status == 200
                echo = await r.json()
            assert (echo["method"], echo["path"], echo["query"], echo["body"]) == ("POST", "/x", "y=1", "payload")
            assert echo["headers"]["x-test"] == "1"
            assert "user-agent" not in echo["headers"]  # JS fetch adds none of aiohttp's defaults
            from workers import fetch
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                closed = sock.getsockname()[1]
            with pytest.raises(OSError):
                await fetch(f"http://127.0.0.1:{closed}/")
    run(body())


def test_large_bodies_reach_the_worker_whole(state):
    async def body():
        payload = bytes(range(256)) * 8192  # 2 MiB: over aiohttp's default 1 MiB cap
        async with edge(state) as e, aiohttp.ClientSession() as s:
            async with s.post(f"{e.url}/echo", data=payload) as r:
                assert r.status == 201 and await r.read() == payload
    run(body())
