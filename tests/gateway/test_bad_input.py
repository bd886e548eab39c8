"""Bad input over the wire (raw bytes, as a client can send them) gets a clear answer:
never a 500, a hang or a traceback, and nothing fails open by accident."""
from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest

from tests.gateway.support import RUNTIME, SECRETS, call, problem_of, run_scenario

TOLLGATE = {"identity": ["header:x-api-key", "bearer", "xff"], "trust_forwarded_for": True,
            "rules": [{"name": "daily", "limit": "50/day", "algorithm": "fixed_window"}]}
ADMIN = {"Authorization": f"Bearer {SECRETS['ADMIN_TOKEN']}"}


async def raw(url: str, head: bytes, body: bytes = b"", wait_continue: bool = False,
              timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """Send `head` (request line and headers, no final CRLF) and `body` on a fresh socket."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(head + b"\r\n" + (b"" if wait_continue else body))
        await writer.drain()
        if wait_continue:                      # as curl does for a large upload, without its 1 s fallback
            interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
            assert interim.startswith(b"HTTP/1.1 100"), interim
            writer.write(body)
            await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout)   # every answer here closes or is read to EOF
    finally:
        writer.close()
    status_line, _, rest = data.partition(b"\r\n")
    head_text, _, payload = rest.partition(b"\r\n\r\n")
    headers = {}
    for line in head_text.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, payload


def request(path: str, *lines: bytes, method: bytes = b"GET") -> bytes:
    return b"\r\n".join([method + b" " + path.encode() + b" HTTP/1.1", b"Host: t", b"Connection: close", *lines]) + b"\r\n"


def problem(status: int, headers: dict, body: bytes) -> dict:
    assert headers.get("content-type", "").startswith("application/problem+json"), (status, headers, body)
    doc = json.loads(body)
    assert doc["status"] == status and b"Traceback" not in body, doc
    return doc


def run(tmp_path, scenario, tollgate=TOLLGATE):
    run_scenario(tmp_path, tollgate, scenario)


@pytest.mark.parametrize("line, header", [
    (b"X-Api-Key: caf\xe9", "x-api-key"),                   # latin-1 byte: not UTF-8
    (b"X-Api-Key: \xff\xfe", "x-api-key"),
    (b"X-Api-Key: caf\xc3\xa9", "x-api-key"),              # valid UTF-8, but not visible ASCII
    (b"Authorization: Bearer tok\xe9n", "authorization"),
])
def test_non_ascii_identity_bytes_are_a_400_naming_the_header(tmp_path, line, header):
    async def scenario(edge, origin, http):
        for path in ("/v1/x", "/__tollgate/allow", "/__tollgate/allow/v1/x"):
            status, headers, body = await raw(edge.url, request(path, line))
            detail = problem(400, headers, body)["detail"]
            assert header in detail and ("not UTF-8" in detail or "non-ASCII" in detail), detail
        assert origin.count() == 0
    run(tmp_path, scenario)


def test_non_utf8_forwarded_for_is_a_400_too(tmp_path):
    async def scenario(edge, origin, http):
        status, headers, body = await raw(edge.url, request("/v1/x", b"X-Forwarded-For: 192.0.2.\xe9"))
        assert "x-forwarded-for" in problem(400, headers, body)["detail"]
        assert origin.count() == 0
    run(tmp_path, scenario)


def test_a_repeated_identity_header_says_it_is_repeated(tmp_path):
    async def scenario(edge, origin, http):
        for path in ("/v1/x", "/__tollgate/allow"):
            status, headers, body = await raw(edge.url, request(path, b"X-Api-Key: alice", b"X-Api-Key: bob"))
            detail = problem(400, headers, body)["detail"]
            assert "x-api-key" in detail and "repeated" in detail and "control" not in detail, detail
        assert origin.count() == 0
    run(tmp_path, scenario)


class NeverContinueOrigin:
    """An origin that never sends 100 Continue (many do not): it reads the whole request
    and answers 200 "ok"; its own thread and loop, so it serves either runtime."""

    def __init__(self) -> None:
        self.seen: list[tuple[bytes, bytes]] = []
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    def __enter__(self) -> "NeverContinueOrigin":
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    async def _serve(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        self._ready.set()
        await self._stop.wait()
        server.close()

    async def _handle(self, reader, writer) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next((int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")), 0)
        self.seen.append((head.lower(), await reader.readexactly(length)))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()


def test_expect_100_continue_is_answered_and_never_reaches_the_origin(tmp_path):
    """Forwarding the expectation used to hang until ORIGIN_TIMEOUT_MS and end in 504."""
    with NeverContinueOrigin() as never:
        async def scenario(edge, origin, http):
            body = b"x" * 5000
            started = time.monotonic()
            status, headers, answer = await raw(edge.url, request(
                "/upload", b"X-Api-Key: alice", b"Expect: 100-continue", b"Content-Length: 5000", method=b"POST"),
                body, wait_continue=True, timeout=5)
            assert status == 200 and answer == b"ok" and time.monotonic() - started < 3
            assert never.seen and never.seen[0][1] == body and b"expect:" not in never.seen[0][0]
        run_scenario(tmp_path, TOLLGATE, scenario, origin_url=never.url, vars={"ORIGIN_TIMEOUT_MS": "8000"})


@pytest.mark.parametrize("head, status", [
    (request("/v1/x", b"X-Api-Key: alice", method=b"BREW"), 501),     # not in workerd's method list
    (request("/v1/x", b"X-Api-Key: alice", method=b"get"), 501),      # methods are case-sensitive there
])
def test_a_method_workerd_does_not_know_is_501_before_the_worker_runs(tmp_path, head, status):
    async def scenario(edge, origin, http):
        got, headers, body = await raw(edge.url, head)
        assert got == status, (got, body)     # workerd: text/plain "ERROR: Unrecognized request method."
        if RUNTIME["name"] == "local":        # the local runtime answers problem+json
            problem(status, headers, body)
        assert origin.count() == 0
    run(tmp_path, scenario)


@pytest.mark.parametrize("head, status", [
    (request("/v1/x", b"X-Api-Key: alice", b"X-Big: " + b"a" * (500 * 1024)), 431),   # over workerd's 480 KiB
    (request("/v1/x", b"X-Api-Key: alice", b"Bad\x01Name: x"), 400),   # a control byte in a header name
])
def test_what_workerd_refuses_before_the_worker_runs_is_refused_here_too(tmp_path, head, status):
    async def scenario(edge, origin, http):
        got, headers, body = await raw(edge.url, head)
        assert got == status, (got, body)
        if RUNTIME["name"] == "local":        # workerd's own answer is text/plain
            problem(status, headers, body)
        assert b"a" * 100 not in body, "no echo of the request"
        assert origin.count() == 0
    run(tmp_path, scenario)


def test_extension_methods_and_large_headers_workerd_accepts_reach_the_worker(tmp_path):
    async def scenario(edge, origin, http):
        for method in (b"PURGE", b"PROPFIND", b"QUERY"):
            got, _, body = await raw(edge.url, request("/v1/x", b"X-Api-Key: alice", method=method))
            assert got == 201 and json.loads(body)["method"] == method.decode()
        got, _, body = await raw(edge.url, request("/__tollgate/allow", b"X-Api-Key: alice", b"X-Big: " + b"a" * 200_000))
        assert got == 200, body          # one 200 kB header is fine: workerd limits the whole head, at 480 KiB
    run(tmp_path, scenario)


def test_forwarded_paths_are_what_workerd_fetch_sends(tmp_path):
    """Dot segments resolved (also as %2e), `//` and the case of %-escapes kept
    (what real workerd sent an origin: ../shared/reference/workerd-offline.md)."""
    cases = {"/v1/%2e%2e/x": "/x", "/a/./b/../c": "/a/c", "//double//slash": "//double//slash",
             "/p%ff": "/p%ff", "/sp%20ace": "/sp%20ace"}

    async def scenario(edge, origin, http):
        for sent, expected in cases.items():
            got, _, _ = await raw(edge.url, request(sent + "?q=%ff", b"X-Api-Key: alice"))
            assert got == 201
            assert (origin.received[-1]["path"], origin.received[-1]["query"]) == (expected, "q=%ff"), sent
    run(tmp_path, scenario)


@pytest.mark.local_only("drives the local runtime's bounded queue per object; workerd's overload point cannot be reached here")
def test_an_overloaded_bucket_denies_whatever_on_error_says(tmp_path):
    from src.tollgate.identity import Identity, client_key

    tollgate = {"identity": ["header:x-api-key"],
                "rules": [{"name": "burst", "limit": "1000/second", "burst": 1000, "on_error": "open"}]}

    async def scenario(edge, origin, http):
        ns = edge.namespace("BUCKETS")
        ns.max_queued = 4
        key = client_key(SECRETS["IDENTITY_SECRET"].encode(), Identity("key", "flood"))
        who = {"X-Api-Key": "flood"}
        async with ns.occupied(key):            # the object is busy: every decision queues behind it
            gateway = [asyncio.ensure_future(call(http, "GET", f"{edge.url}/v1/x", headers=who)) for _ in range(10)]
            allow = [asyncio.ensure_future(call(http, "GET", f"{edge.url}/__tollgate/allow", headers=who))
                     for _ in range(10)]
            for _ in range(1000):               # 4 queue, 16 are refused at once
                if ns.overloads >= 16:
                    break
                await asyncio.sleep(0.01)
            assert ns.overloads == 16, ns.overloads
        answers = await asyncio.gather(*gateway, *allow)
        statuses = [a[0] for a in answers]
        assert sorted(statuses).count(429) == 16 and set(statuses) <= {200, 201, 429}, statuses
        for status, headers, body in answers:
            if status == 429:
                doc = problem_of(429, headers, body)
                assert headers["Retry-After"] == "1" and doc["retry_after"] == 1
                assert doc["type"].endswith("#temporary-reduced-capacity") and "Tollgate-Unchecked" not in headers
        assert [a[2] for a in answers[10:] if a[0] == 429] and all(
            json.loads(a[2])["allowed"] is False for a in answers[10:] if a[0] == 429)
        assert all("tollgate-unchecked" not in dict(r["headers"]) for r in origin.received), "nothing passed unchecked"
        assert origin.count() == statuses[:10].count(201)
    run_scenario(tmp_path, tollgate, scenario)


@pytest.mark.local_only("removes the binding from the running env, which only the local runtime exposes")
def test_a_missing_bucket_binding_fails_closed_not_open(tmp_path):
    async def scenario(edge, origin, http):
        del edge.env.BUCKETS
        for path in ("/v1/x", "/__tollgate/allow"):
            status, headers, body = await call(http, "GET", f"{edge.url}{path}", headers={"X-Api-Key": "alice"})
            assert problem_of(503, headers, body)["title"] == "Tollgate is misconfigured"
            assert "Tollgate-Unchecked" not in headers
        status, headers, body = await call(http, "GET", f"{edge.url}/v1/x", headers=ADMIN)
        assert any(e.startswith("BUCKETS: no Durable Object binding") for e in problem_of(503, headers, body)["errors"])
        assert origin.count() == 0
    run(tmp_path, scenario)
