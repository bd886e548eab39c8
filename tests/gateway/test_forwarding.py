"""Forwarding: what reaches the origin and what comes back, as a transparent proxy."""
from __future__ import annotations

import base64
import gzip
import json

from multidict import CIMultiDict
from yarl import URL

from tests.gateway.support import run_scenario
from worker.forwarding import request_headers, response_headers

TOLLGATE = {"identity": ["header:x-api-key"],
            "rules": [{"name": "daily", "limit": "50/day", "algorithm": "fixed_window"}]}


def run(tmp_path, scenario):
    run_scenario(tmp_path, TOLLGATE, scenario, auto_decompress=False)


def test_method_path_query_body_and_headers_reach_the_origin(tmp_path):
    body = bytes(range(256)) * 3
    query = "a=1&a=2&q=caf%C3%A9&empty=&plus=a+b"

    async def scenario(edge, origin, http):
        headers = CIMultiDict([
            ("X-Api-Key", "alice"), ("X-Custom", "kept"), ("Content-Type", "application/octet-stream"),
            ("Accept", "application/json"), ("Authorization", "Bearer client-token"),
            ("Connection", "keep-alive, X-Hop"), ("X-Hop", "connection-only"), ("Keep-Alive", "timeout=5"),
            ("TE", "trailers"), ("Proxy-Authorization", "Basic cHJveHk6c2VjcmV0"),
            ("Tollgate-Unchecked", "spoofed"), ("Tollgate-Cost", "99"), ("X-Forwarded-For", "203.0.113.7"),
            # Cloudflare's front line (and wrangler dev, imitating it) compresses a JSON answer for a
            # client that accepts gzip; this test reads the body as the origin sent it
            ("Accept-Encoding", "identity"),
        ])
        url = URL(f"{edge.url}/v1/echo/a%20b/c%2Fd?{query}", encoded=True)
        async with http.post(url, data=body, headers=headers) as r:
            status, got, text = r.status, r.headers, await r.read()
        assert status == 201, text
        seen = origin.received[-1]
        sent = dict(seen["headers"])
        assert seen["method"] == "POST" and seen["path"] == "/v1/echo/a%20b/c%2Fd"
        assert seen["query"] == query
        assert base64.b64decode(seen["body_b64"]) == body
        assert sent["x-custom"] == "kept" and sent["authorization"] == "Bearer client-token"
        assert sent["content-type"] == "application/octet-stream" and sent["accept"] == "application/json"
        for dropped in ("keep-alive", "te", "proxy-authorization", "tollgate-unchecked", "tollgate-cost"):
            assert dropped not in sent, dropped
        # workerd consumes `Connection` itself and never shows it to the Worker, so a header it
        # names reaches the Worker, and the origin, like any other (README "Real workerd").
        assert sent["x-hop"] == "connection-only"
        assert sent["x-forwarded-for"] == "203.0.113.7, 127.0.0.1"
        assert sent["x-forwarded-proto"] == "http"
        # the platform replaces CF-Connecting-IP on a subrequest and names the Worker's zone
        assert "cf-connecting-ip" not in sent and sent["cf-worker"] == "tollgate-test.example.com"
        # what came back: the origin's status, headers (both cookies) and body, plus ours
        assert got["X-Origin"] == "test-origin" and got.getall("Set-Cookie") == ["a=1; Path=/", "b=2; Path=/"]
        assert json.loads(text)["method"] == "POST"
        assert got["RateLimit"].startswith('"daily";r=49;') and got["RateLimit-Policy"] == '"daily";q=50;w=86400'
    run(tmp_path, scenario)


def test_every_method_is_forwarded_as_it_came(tmp_path):
    async def scenario(edge, origin, http):
        for method in ("GET", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "PROPFIND"):
            async with http.request(method, f"{edge.url}/v1/m", data=None if method in ("GET", "HEAD") else b"b",
                                    headers={"X-Api-Key": "bob"}) as r:
                assert r.status == 201, (method, r.status, await r.text())
                text = await r.read()
            assert origin.received[-1]["method"] == method
            assert (text == b"") == (method == "HEAD")
    run(tmp_path, scenario)


def test_redirects_and_bodyless_statuses_pass_through_unfollowed(tmp_path):
    async def scenario(edge, origin, http):
        async with http.get(f"{edge.url}/status/302", headers={"X-Api-Key": "carol"}, allow_redirects=False) as r:
            assert r.status == 302 and r.headers["Location"] == "/elsewhere" and "RateLimit" in r.headers
        assert origin.count() == 1, "the redirect was returned, not followed"
        async with http.get(f"{edge.url}/status/204", headers={"X-Api-Key": "carol"}) as r:
            assert r.status == 204 and await r.read() == b""
        async with http.get(f"{edge.url}/status/503", headers={"X-Api-Key": "carol"}) as r:
            assert r.status == 503 and await r.read() == b"status body"
    run(tmp_path, scenario)


def test_hop_by_hop_headers_are_dropped_both_ways():
    items = [("connection", "Upgrade, X-A"), ("upgrade", "websocket"), ("x-a", "1"), ("trailer", "x-t"),
             ("transfer-encoding", "chunked"), ("proxy-connection", "keep-alive"), ("host", "edge.example"),
             ("content-length", "3"), ("x-forwarded-for", "198.51.100.1"), ("x-forwarded-host", "spoof"),
             ("tollgate-allow-token", "t"), ("x-kept", "yes"), ("cf-connecting-ip", "192.0.2.9")]
    out = dict(request_headers(items, "192.0.2.9", "https", "edge.example"))
    assert out == {"x-kept": "yes", "cf-connecting-ip": "192.0.2.9", "x-forwarded-for": "198.51.100.1, 192.0.2.9",
                   "x-forwarded-proto": "https", "x-forwarded-host": "edge.example"}
    # an edge that already appended the client to X-Forwarded-For does not get it twice
    again = dict(request_headers([("x-forwarded-for", "198.51.100.1, 192.0.2.9")], "192.0.2.9", "https", None))
    assert again["x-forwarded-for"] == "198.51.100.1, 192.0.2.9"
    back = [("connection", "x-b"), ("x-b", "1"), ("keep-alive", "5"), ("content-encoding", "gzip"),
            ("content-length", "10"), ("set-cookie", "a=1"), ("set-cookie", "b=2")]
    assert response_headers(back, buffered=True) == [("content-encoding", "gzip"), ("set-cookie", "a=1"),
                                                      ("set-cookie", "b=2")]
    assert ("content-length", "10") in response_headers(back, buffered=False)


def test_a_compressed_answer_reaches_the_client_intact(tmp_path):
    async def scenario(edge, origin, http):
        async with http.get(f"{edge.url}/gzip", headers={"X-Api-Key": "gina", "Accept-Encoding": "gzip"}) as r:
            assert r.status == 200 and r.headers["Content-Encoding"] == "gzip"
            assert gzip.decompress(await r.read()) == b"compressed hello " * 100
    run(tmp_path, scenario)
