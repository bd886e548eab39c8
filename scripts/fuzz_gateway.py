#!/usr/bin/env python3
"""HTTP fuzzing of the running gateway (the local runtime, real sockets, raw bytes).

    scripts/fuzz [--requests N] [--seed S]

Hypothesis generates requests over identities (every byte value in x-api-key and
Authorization, lengths up to 300, repeated headers), costs (with and without the
allow token), methods (standard, extension, unknown, lower-case), paths (dot
segments, %-escapes, `//`, the /__tollgate/ routes), header sizes up to 500 kB
and bodies. Every answer must be below 500, carry no traceback, and be problem+json
when it is an error the gateway made. Afterwards every tracked client's bucket must
hold exactly what the responses admitted: its `total` rule's admitted cost and
request count equal the drop in `RateLimit` remaining over the admitted answers,
and a denial never moved it.

Time is virtual (src/tollgate/clock.py), one millisecond per request, so a run is
the same whatever the machine's speed and never crosses an accounting hour.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import socket
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SECRETS = {"ADMIN_TOKEN": "fuzz-admin-token", "ALLOW_TOKEN": "fuzz-allow-token", "IDENTITY_SECRET": "fuzz-secret"}
TOTAL = 10_000_000
TOLLGATE = {
    "identity": ["header:x-api-key", "bearer", "ip"],
    "rules": [{"name": "total", "limit": f"{TOTAL}/day", "algorithm": "fixed_window"},
              {"name": "burst", "limit": "1000/second", "burst": 50},
              {"name": "tight", "limit": "2/second", "burst": 3, "match": {"paths": ["/v1/tight*"]}}],
    "costs": {"POST /v1/search*": 3},
    "overrides": {"blocked-one": {"total": "blocked"}},
}
POOL = ("alice", "bob", "carol")        # clients whose bucket state is checked at the end
START_MS = 1_800_000_000_000 + 600_000  # ten minutes into an hour
_RATELIMIT_TOTAL = re.compile(r'"total";r=(\d+)')
RESET = 0   # a pseudo-status in a tracked sequence: the admin API reset this client


@dataclass
class Result:
    requests: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    findings: list[str] = field(default_factory=list)
    tracked: dict[str, list[tuple[int, int]]] = field(default_factory=dict)   # key -> [(status, r)]


# ------------------------------------------------------------------ the gateway under test
class Gateway:
    """The repo's Worker on the local runtime, in a thread of its own, on a free port."""

    def __init__(self, folder: Path) -> None:
        from src.localedge.derived import derived_config
        self.config = derived_config(folder / "cfg", {"TOLLGATE": TOLLGATE}, SECRETS, name="tollgate-fuzz")
        self.state = folder / "state"
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)
        self.port = 0

    def __enter__(self) -> "Gateway":
        self._thread.start()
        if not self._ready.wait(60):
            raise RuntimeError("the local runtime did not start")
        return self

    def __exit__(self, *exc: Any) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    async def _serve(self) -> None:
        from src.localedge import LocalEdge
        from src.localedge.origin import EchoOrigin
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        async with EchoOrigin() as origin:
            async with LocalEdge(self.config, self.state, port=0, origin=origin.url, build=False,
                                 crons=False) as edge:
                self.edge = edge
                self.port = edge.port
                self._ready.set()
                await self._stop.wait()


def send(port: int, head: bytes, body: bytes, timeout: float = 15.0) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection (Connection: close), read to EOF. A server may answer
    (431) and close before it has read all of a huge head, as HTTP allows: what it answered
    is still read, and a reset after it is not an error."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(head + b"\r\n" + body)
        except (BrokenPipeError, ConnectionResetError):
            pass
        chunks = []
        while True:
            try:
                data = s.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            chunks.append(data)
    raw = b"".join(chunks)
    status_line, _, rest = raw.partition(b"\r\n")
    head_text, _, payload = rest.partition(b"\r\n\r\n")
    headers: dict[str, str] = {}
    for line in head_text.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    parts = status_line.split()
    return (int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else -1), headers, payload


# ------------------------------------------------------------------ what is generated
def strategies() -> Any:
    from hypothesis import strategies as st

    header_bytes = st.binary(max_size=300).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
    token = st.text("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
                    min_size=1, max_size=20)
    segment = st.one_of(st.sampled_from(["v1", "search", "items", "tight", ".", "..", "%2e", "%2E%2e", "",
                                         "%ff", "%73earch", "a%2fb", "x;y", "~u", "__tollgate"]),
                        st.text("abcxyz0123456789-._~!$&'()*+,;=:@%", max_size=12))
    path = st.one_of(
        st.lists(segment, min_size=1, max_size=6).map(lambda s: "/" + "/".join(s)),
        st.sampled_from(["/v1/search", "/v1/search?q=%ff", "/v1/tight", "/v1/items?cost=3", "/__tollgate/allow",
                         "/__tollgate/allow/v1/search", "/__tollgate/allow?cost=2", "/__tollgate/health",
                         "/__tollgate/metrics", "/__tollgate/nope", "/__tollgate/admin/clients/alice",
                         "/__tollgate/admin/clients/key%3Abob", "/__tollgate/admin/clients/%ff%fe",
                         "/__tollgate/admin/clients/ip%3A2001%3Adb8%3A%3A1"]))
    method = st.sampled_from(["GET", "GET", "GET", "POST", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS",
                              "PURGE", "PROPFIND", "QUERY", "BREW", "get", "M-SEARCH"])
    identity = st.one_of(
        st.sampled_from([("pool", k) for k in POOL]),
        st.tuples(st.just("key"), header_bytes),
        st.tuples(st.just("bearer"), header_bytes),
        st.tuples(st.just("repeat"), st.tuples(header_bytes, header_bytes)),
        st.tuples(st.just("long"), st.integers(200, 400)),
        st.just(("none", b"")))
    cost = st.one_of(st.none(), st.tuples(st.sampled_from([None, SECRETS["ALLOW_TOKEN"], "wrong"]),
                                          st.one_of(st.integers(-3, 1200).map(str), st.text(max_size=6))))
    extra = st.lists(st.tuples(token, header_bytes), max_size=3)
    big = st.sampled_from([0, 0, 0, 100, 9000, 20_000, 140_000, 500_000])   # workerd refuses a head over 480 KiB
    body = st.binary(max_size=3000)
    admin = st.sampled_from([None, SECRETS["ADMIN_TOKEN"], "wrong"])
    return st.tuples(method, path, identity, cost, extra, big, body, admin)


def build(spec: tuple) -> tuple[bytes, bytes, str | None, str]:
    """(head, body, tracked pool key or None, path) of one generated request."""
    method, path, (kind, value), cost, extra, big, body, admin = spec
    lines = [f"{method} {path} HTTP/1.1".encode(), b"Host: fuzz.test", b"Connection: close"]
    tracked = None
    if kind == "pool":
        lines.append(f"X-Api-Key: {value}".encode())
        tracked = value
    elif kind == "key":
        lines.append(b"X-Api-Key: " + value)
    elif kind == "bearer":
        lines.append(b"Authorization: Bearer " + value)
    elif kind == "repeat":
        lines += [b"X-Api-Key: " + value[0], b"X-Api-Key: " + value[1]]
    elif kind == "long":
        lines.append(b"X-Api-Key: " + b"k" * value)
    if admin is not None and kind != "bearer":
        lines.append(f"Authorization: Bearer {admin}".encode())
    if cost is not None:
        token, amount = cost
        lines.append(b"Tollgate-Cost: " + amount.encode("utf-8", "replace").replace(b"\r", b"").replace(b"\n", b""))
        if token is not None:
            lines.append(f"Tollgate-Allow-Token: {token}".encode())
    for name, v in extra:
        lines.append(name.encode() + b": " + v)
    if big:
        lines.append(b"X-Padding: " + b"p" * big)
    if method in ("GET", "HEAD", "get"):
        body = b""
    lines.append(f"Content-Length: {len(body)}".encode())
    return b"\r\n".join(lines) + b"\r\n", body, tracked, path


# ------------------------------------------------------------------ the checks
def check_answer(spec: tuple, path: str, status: int, headers: dict[str, str], body: bytes, result: Result) -> None:
    result.requests += 1
    result.statuses[status] = result.statuses.get(status, 0) + 1
    where = f"{spec[0]} {path[:80]}"
    from src.localedge.server import KJ_METHODS
    if status == 501 and spec[0] not in KJ_METHODS:
        return                             # workerd's own answer to a method it does not know: by design
    if status < 100 or status >= 500:
        raise AssertionError(f"{where}: status {status}: {body[:300]!r}")
    echoed = headers.get("content-type", "").startswith("application/json") and b'"headers"' in body
    if not echoed and (b"Traceback" in body or b'File "' in body):    # the echo origin repeats what it got
        raise AssertionError(f"{where}: a traceback reached the client: {body[:300]!r}")
    gateway_made = status >= 400 and not headers.get("content-type", "").startswith("application/json")
    if gateway_made and spec[0] != "HEAD":
        if not headers.get("content-type", "").startswith("application/problem+json"):
            raise AssertionError(f"{where}: {status} without problem+json: {headers} {body[:200]!r}")
        doc = json.loads(body)
        if doc.get("status") != status:
            raise AssertionError(f"{where}: problem status {doc.get('status')} != {status}")


_ADMIN_CLIENT = re.compile(r"^/__tollgate/admin/clients/(?:key%3A|key:)?([a-z]+)$")


def track_reset(spec: tuple, path: str, status: int, result: Result) -> None:
    """An admin DELETE that succeeded resets that client's limiter state (its counters stay):
    the answers after it count down from a full quota again, and the check knows it."""
    m = _ADMIN_CLIENT.match(path)
    if spec[0] == "DELETE" and status == 200 and m and m.group(1) in POOL:
        result.tracked.setdefault(m.group(1), []).append((RESET, TOTAL))


def track(key: str, status: int, headers: dict[str, str], result: Result) -> None:
    m = _RATELIMIT_TOTAL.search(headers.get("ratelimit", ""))
    if m is not None:
        result.tracked.setdefault(key, []).append((status, int(m.group(1))))


def check_buckets(port: int, result: Result) -> None:
    """Each pool client's `total` row holds what its answers admitted, and denials moved nothing."""
    for key, seen in result.tracked.items():
        remaining, admitted_requests, admitted_cost = TOTAL, 0, 0
        for status, r in seen:
            if status == RESET:                 # limiter state reset: a full quota again, counters kept
                remaining = TOTAL
            elif status != 429:                 # admitted: the origin's own status may be anything
                if not r < remaining:
                    result.findings.append(f"{key}: an admitted answer did not lower remaining ({remaining} -> {r})")
                admitted_cost += remaining - r
                remaining, admitted_requests = r, admitted_requests + 1
            elif r != remaining:
                result.findings.append(f"{key}: a denial changed remaining ({remaining} -> {r})")
        head = (f"GET /__tollgate/admin/clients/{key} HTTP/1.1\r\nHost: fuzz.test\r\nConnection: close\r\n"
                f"Authorization: Bearer {SECRETS['ADMIN_TOKEN']}\r\n").encode()
        status, _, body = send(port, head, b"")
        row = json.loads(body)["rules"].get("total", {}) if status == 200 else {}
        if row.get("admitted") != admitted_cost or row.get("allowed") != admitted_requests:
            result.findings.append(f"{key}: bucket says admitted={row.get('admitted')} allowed={row.get('allowed')}, "
                                   f"answers admitted {admitted_cost} in {admitted_requests} requests")


def run(requests: int, seed: int | None = None, folder: Path | None = None) -> Result:
    """Send at least `requests` generated requests; findings are collected, never raised."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as with_seed
    from src.tollgate import clock

    result = Result()
    now = [START_MS]
    per_example = 4
    folder = folder or Path(tempfile.mkdtemp(prefix="tollgate-fuzz-"))

    with clock.use(lambda: now[0]), Gateway(folder) as gw:
        from hypothesis import strategies as st

        @settings(max_examples=math.ceil(requests / per_example), deadline=None, database=None,
                  derandomize=seed is None, phases=[Phase.generate, Phase.shrink],
                  suppress_health_check=list(HealthCheck))
        @given(st.lists(strategies(), min_size=per_example, max_size=per_example))
        def batch(specs: list) -> None:
            for spec in specs:
                head, body, tracked, path = build(spec)
                now[0] += 1
                status, headers, payload = send(gw.port, head, body)
                check_answer(spec, path, status, headers, payload, result)
                track_reset(spec, path, status, result)
                if tracked is not None:
                    track(tracked, status, headers, result)

        # A fixed opening, so every run meets a denial whatever hypothesis draws: each pool
        # client sends 5 quick requests to /v1/tight (burst 3), the last ones get 429.
        for key in POOL:
            for _ in range(5):
                spec = ("GET", "/v1/tight", ("pool", key), None, [], 0, b"", None)
                head, body, tracked, path = build(spec)
                now[0] += 1
                status, headers, payload = send(gw.port, head, body)
                check_answer(spec, path, status, headers, payload, result)
                track(key, status, headers, result)
        if seed is not None:
            batch = with_seed(seed)(batch)
        try:
            batch()
        except Exception as exc:  # hypothesis re-raises the shrunk failing example
            result.findings.append(f"{type(exc).__name__}: {exc}")
        check_buckets(gw.port, result)
        errors = gw.edge._server.errors if gw.edge._server is not None else 0
        if errors:
            result.findings.append(f"{errors} uncaught exception(s) in the Worker (see the log)")
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="scripts/fuzz", description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=10_000, help="requests to generate (default 10000)")
    p.add_argument("--seed", type=int, default=None, help="hypothesis seed (default: derandomized, repeatable)")
    args = p.parse_args(argv)
    result = run(args.requests, args.seed)
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(result.statuses.items()))
    print(f"fuzz: {result.requests} requests, statuses {{{statuses}}}, {len(result.tracked)} buckets checked")
    for finding in result.findings:
        print(f"FINDING: {finding}")
    print(f"fuzz: {len(result.findings)} finding(s)")
    return 1 if result.findings else 0


if __name__ == "__main__":
    sys.exit(main())
