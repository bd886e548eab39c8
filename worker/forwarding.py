"""What a transparent proxy sends on: the origin URL and the headers each way.

Hop-by-hop headers (RFC 9110 §7.6.1: Connection and every header it names,
Keep-Alive, Proxy-*, TE, Trailer, Transfer-Encoding, Upgrade) belong to one
connection and are dropped both ways. Client-sent `Tollgate-*` headers are
ours and never reach the origin (a client must not be able to claim it was
not rate limited). Host and Content-Length are set by the outbound fetch.
CF-Connecting-IP is set by the edge itself (a client-sent one is replaced
there) and passes as it is. X-Forwarded-For ends with the client address
(appended unless the edge already did); X-Forwarded-Proto and
X-Forwarded-Host are set from the request.
"""
from __future__ import annotations

HeaderList = list[tuple[str, str]]

HOP_BY_HOP = frozenset(("connection", "keep-alive", "proxy-connection", "te", "trailer",
                        "transfer-encoding", "upgrade"))
INTERNAL_PREFIX = "tollgate-"
# Set again by the outbound fetch from the URL and the body. `Expect: 100-continue` is met
# here (RFC 9110 section 10.1.1): the Worker holds the whole body before it forwards, so
# the expectation is the client's and the edge's business; sent on, an HTTP client waits
# for the origin's 100 (aiohttp does, until its timeout) while an origin may never send one.
REQUEST_RECOMPUTED = frozenset(("host", "content-length", "expect"))
REQUEST_REPLACED = frozenset(("x-forwarded-proto", "x-forwarded-host"))
# A buffered body is complete: the platform recomputes its length. Its encoding is kept:
# on the edge a buffered body only happens without a stream, and the local runtime's
# fetch hands back the bytes as the origin encoded them (src/localedge/sdk/workers/fetch.py).
BUFFERED_BODY_DROPPED = frozenset(("content-length",))

# Tells the origin and the client that the bucket could not be asked (on_error = "open").
UNCHECKED_HEADER = "Tollgate-Unchecked"


def origin_url(origin: str, url_path: str, query: str) -> str:
    """ORIGIN_URL (no trailing slash, may carry a base path) + the request's raw path and query."""
    return f"{origin}{url_path}?{query}" if query else f"{origin}{url_path}"


def _connection_tokens(items: HeaderList) -> frozenset[str]:
    named = [token.strip().lower() for name, value in items if name == "connection"
             for token in value.split(",")]
    return frozenset(t for t in named if t)


def request_headers(items: HeaderList, client_ip: str | None, scheme: str, host: str | None) -> HeaderList:
    """The headers to send to the origin; `items` have lower-case names (worker/platform.py)."""
    drop = _connection_tokens(items) if "connection" in (n for n, _ in items) else ()
    out: HeaderList = []
    forwarded_for = None
    for name, value in items:
        if (name in HOP_BY_HOP or name in REQUEST_RECOMPUTED or name in REQUEST_REPLACED or name in drop
                or name.startswith("proxy-") or name.startswith(INTERNAL_PREFIX)):
            continue
        if name == "x-forwarded-for":
            forwarded_for = f"{forwarded_for}, {value}" if forwarded_for else value
            continue
        out.append((name, value))
    if client_ip and (forwarded_for is None or forwarded_for.rpartition(",")[2].strip() != client_ip):
        # The edge itself may already have appended the client (Cloudflare does): never twice.
        forwarded_for = f"{forwarded_for}, {client_ip}" if forwarded_for else client_ip
    if forwarded_for:
        out.append(("x-forwarded-for", forwarded_for))
    out.append(("x-forwarded-proto", scheme))
    if host:
        out.append(("x-forwarded-host", host))
    return out


def response_headers(items: HeaderList, buffered: bool) -> HeaderList:
    """The origin's response headers to pass back; `buffered`: the body was read into bytes."""
    drop = _connection_tokens(items) if "connection" in (n for n, _ in items) else ()
    return [(name, value) for name, value in items
            if not (name in HOP_BY_HOP or name in drop or name.startswith("proxy-")
                    or (buffered and name in BUFFERED_BODY_DROPPED))]
