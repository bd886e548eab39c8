"""A reply as plain values, and the problem+json replies the Worker gives.

Why plain values: the pipeline builds `Reply(status, headers, body)` and only
the last step (worker/platform.py) turns it into a platform Response, so every
route reads the same on both runtimes.
"""
from __future__ import annotations

import json
from typing import Any, NamedTuple

from src.tollgate.headers import problem

HeaderList = list[tuple[str, str]]
NO_STORE = ("Cache-Control", "no-store")


class Reply(NamedTuple):
    status: int
    headers: HeaderList
    body: Any            # bytes, str (our JSON), or the origin's ReadableStream on the edge (worker/platform.py)


def problem_reply(status: int, title: str, detail: str, extra_headers: HeaderList | None = None,
                  type_: str = "about:blank", **extensions: Any) -> Reply:
    """An RFC 9457 problem+json reply; `extensions` become members of the body."""
    body, headers = problem(status, title, detail, type_, **extensions)
    if extra_headers:
        headers = headers + extra_headers
    return Reply(status, headers, body)


def json_reply(status: int, obj: Any, extra_headers: HeaderList | None = None) -> Reply:
    """`obj` as compact JSON; a str is taken as JSON text already (a constant body, encoded once)."""
    headers = [("Content-Type", "application/json"), NO_STORE]
    if extra_headers:
        headers += extra_headers
    # A str body: on the edge the JS Response takes it as is (bytes would go through a buffer proxy).
    return Reply(status, headers, obj if isinstance(obj, str) else json.dumps(obj, separators=(",", ":")))


def method_not_allowed(method: str, allowed: tuple[str, ...]) -> Reply:
    return problem_reply(405, "Method Not Allowed", f"{method} is not allowed here; use {', '.join(allowed)}.",
                         [("Allow", ", ".join(allowed))])


def not_found(path: str) -> Reply:
    return problem_reply(404, "Not Found",
                         f"{path[:200]} is not a Tollgate route (known: /__tollgate/allow, /__tollgate/release, /__tollgate/health, "
                         "/__tollgate/metrics, /__tollgate/admin/clients/<identity>).")
