"""worker/replies.py: every reply the Worker builds itself, as plain values."""
from __future__ import annotations

from src.localedge.sdk import install

install()   # `import workers` finds the local runtime's SDK, as the runtime provides it

import json

from worker.replies import Reply, json_reply, method_not_allowed, not_found, problem_reply


def header(reply: Reply, name: str) -> list[str]:
    return [v for k, v in reply.headers if k.lower() == name.lower()]


def test_a_problem_reply_is_rfc_9457_with_its_extensions_and_extra_headers():
    reply = problem_reply(429, "Too Many Requests", "slow down", [("Retry-After", "3")], rule="burst")
    doc = json.loads(reply.body)
    assert reply.status == 429 and header(reply, "content-type") == ["application/problem+json"]
    assert (doc["status"], doc["title"], doc["detail"], doc["rule"]) == (429, "Too Many Requests", "slow down", "burst")
    assert header(reply, "retry-after") == ["3"]


def test_json_reply_is_compact_uncacheable_and_passes_json_text_through():
    reply = json_reply(200, {"allowed": True, "n": [1, 2]}, [("X-A", "1")])
    assert reply.body == '{"allowed":true,"n":[1,2]}'
    assert header(reply, "cache-control") == ["no-store"] and header(reply, "x-a") == ["1"]
    assert json_reply(200, '{"pre":"encoded"}').body == '{"pre":"encoded"}'


def test_method_not_allowed_says_which_methods_are():
    reply = method_not_allowed("PUT", ("GET", "DELETE"))
    assert reply.status == 405 and header(reply, "allow") == ["GET, DELETE"]
    assert "PUT is not allowed here; use GET, DELETE." in json.loads(reply.body)["detail"]


def test_not_found_names_the_known_routes_and_never_echoes_a_huge_path():
    reply = not_found("/__tollgate/" + "x" * 5000)
    detail = json.loads(reply.body)["detail"]
    assert reply.status == 404 and "/__tollgate/allow" in detail and len(detail) < 400
