"""What the gateway fuzzer deploys and sends: the config under test and the request generator.

The config has a `total` rule high enough that no run exhausts it, so its `RateLimit`
remaining counts every admitted unit (the checks in fuzz_checks.py rely on it), a tight
rule on /v1/tight* so denials happen, a route cost, and a blocked override. The
requests come from hypothesis strategies over identities, costs, methods, paths,
header sizes and bodies; `build` turns one draw into raw bytes.
"""
from __future__ import annotations

from typing import Any

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
