"""What the gateway fuzzer asserts: of every answer, and of the buckets afterwards.

Every answer must be below 500 (but workerd's own 501 for a method it does not know),
carry no traceback, and be problem+json when it is an error the gateway made. The pool
clients' answers are tracked, and at the end each one's bucket must hold exactly what
they admitted: a denial never moves the `total` rule's remaining.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from scripts.fuzz_requests import POOL, SECRETS, TOTAL
from scripts.raw_http import send

_RATELIMIT_TOTAL = re.compile(r'"total";r=(\d+)')
RESET = 0   # a pseudo-status in a tracked sequence: the admin API reset this client


@dataclass
class Result:
    requests: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    findings: list[str] = field(default_factory=list)
    tracked: dict[str, list[tuple[int, int]]] = field(default_factory=dict)   # key -> [(status, r)]


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
