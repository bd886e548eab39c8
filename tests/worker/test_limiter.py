"""worker/limiter.py: who the client is, what can never pass, and the bucket's verdict.

The buckets are real `ClientBucket`s on in-memory SQLite (tests/state/fakes.py); a namespace
that is down or overloaded stands for the RPC failing."""
from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

from src.localedge.sdk import install

install()   # `import workers` finds the local runtime's SDK, as the runtime provides it

from durable_objects.bucket import ClientBucket  # noqa: E402
from durable_objects.outbox import SnapshotOutbox  # noqa: E402
from src.tollgate.identity import Identity  # noqa: E402
from tests.state.fakes import FakeNamespace  # noqa: E402
from worker import deny_cache, limiter  # noqa: E402
from worker.replies import Reply  # noqa: E402
from worker.settings import parse_settings  # noqa: E402


def settings_for(rules: list[dict], identity: list[str] | None = None) -> tuple[SimpleNamespace, object]:
    env = SimpleNamespace(IDENTITY_SECRET="limiter-test", TOLLGATE=json.dumps(
        {"identity": identity or ["header:x-api-key"], "rules": rules}))
    env.BUCKETS = FakeNamespace(ClientBucket, env)
    env.OUTBOX = FakeNamespace(SnapshotOutbox, env)
    env.tollgate_isolate = deny_cache.Scope()      # this test's own isolate: no denial cached by another
    return env, parse_settings(env)


def problem(reply: Reply) -> dict:
    assert isinstance(reply, Reply), reply
    return json.loads(reply.body)


def test_an_unidentified_client_is_told_what_to_send():
    env, settings = settings_for([{"name": "r", "limit": "5/second"}], ["header:x-api-key", "bearer"])
    reply = asyncio.run(limiter.identify_client(settings, {}, env))
    assert reply.status == 401 and "Send one of: header x-api-key, Authorization: Bearer <token>." in problem(reply)["detail"]
    assert ("WWW-Authenticate", 'Bearer realm="tollgate"') in reply.headers
    bad = asyncio.run(limiter.identify_client(settings, {"x-api-key": "a, b"}, env))
    assert bad.status == 400 and problem(bad)["title"] == "Bad client identity"
    assert asyncio.run(limiter.identify_client(settings, {"x-api-key": "k1"}, env)) == Identity("key", "k1")


def test_a_cost_above_an_enforcing_rules_capacity_is_400_naming_the_rule():
    _, settings = settings_for([{"name": "small", "limit": "5/second"},
                                {"name": "tiny-shadow", "limit": "1/second", "shadow": True}])
    resolution = settings.config.resolve(Identity("key", "k"), "GET", "/")
    assert limiter.impossible_cost(resolution, 5) is None, "a shadow rule never refuses"
    reply = limiter.impossible_cost(resolution, 6)
    assert reply.status == 400 and problem(reply)["rule"] == "small"
    assert 'rule "small", which admits at most 5 at once' in problem(reply)["detail"]


def test_the_bucket_admits_then_denies_with_ratelimit_headers():
    env, settings = settings_for([{"name": "burst", "limit": "1/minute", "burst": 1}])
    identity = Identity("key", "alice")
    resolution = settings.config.resolve(identity, "GET", "/v1/x")
    first = asyncio.run(limiter.ask_one_bucket(env, None, settings, identity, resolution, 1))
    second = asyncio.run(limiter.ask_one_bucket(env, None, settings, identity, resolution, 1))
    assert (first.verdict, second.verdict) == (limiter.ALLOWED, limiter.DENIED)
    names = {k.lower() for k, _ in second.headers}
    assert {"ratelimit", "ratelimit-policy", "retry-after"} <= names
    assert second.decision.denied_by == "burst" and second.decision.retry_after_ms > 0


def test_an_unreachable_bucket_fails_open_or_closed_as_the_rule_says():
    for on_error, verdict in (("open", limiter.UNCHECKED), ("closed", limiter.CLOSED)):
        env, settings = settings_for([{"name": "r", "limit": "5/second", "on_error": on_error}])
        env.BUCKETS.down = True
        identity = Identity("key", "bob")
        resolution = settings.config.resolve(identity, "GET", "/")
        got = asyncio.run(limiter.ask_one_bucket(env, None, settings, identity, resolution, 1))
        assert got.verdict == verdict and got.decision is None
    reply = limiter.closed_reply(resolution)
    assert reply.status == 503 and ("Retry-After", "1") in reply.headers and problem(reply)["rule"] == "r"


class _Overloaded(Exception):
    overloaded = True


def test_an_overloaded_bucket_denies_even_when_its_rules_fail_open():
    env, settings = settings_for([{"name": "r", "limit": "5/second", "on_error": "open"}])

    class Flooded:
        async def decide(self, *args):
            raise _Overloaded("Durable Object is overloaded")
    env.BUCKETS = SimpleNamespace(getByName=lambda name: Flooded())
    identity = Identity("key", "flood")
    resolution = settings.config.resolve(identity, "GET", "/")
    got = asyncio.run(limiter.ask_one_bucket(env, None, settings, identity, resolution, 1))
    assert got.verdict == limiter.OVERLOADED
    reply = limiter.overloaded_reply()
    assert reply.status == 429 and problem(reply)["type"].endswith("#temporary-reduced-capacity")


def test_overload_is_read_from_the_error_property_never_its_message():
    assert limiter.is_overloaded(_Overloaded())
    assert limiter.is_overloaded(RuntimeError("x")) is False
    wrapped = RuntimeError("rpc failed")
    wrapped.js_error = SimpleNamespace(overloaded=True)
    assert limiter.is_overloaded(wrapped)
    assert limiter.is_overloaded(RuntimeError("Durable Object is overloaded")) is False


def test_rules_match_the_path_the_origin_will_serve():
    assert limiter.rule_path("/v1/%73earch") == "/v1/search"
    assert limiter.rule_path("/v1/x/../search") == "/v1/search"
    assert limiter.rule_path("/v1/./a/%2e%2e/b") == "/v1/b"
    assert limiter.rule_path("/../../etc") == "/etc"


def test_a_blocked_client_is_403_naming_the_rule():
    reply = limiter.blocked_reply("total")
    assert reply.status == 403 and problem(reply)["rule"] == "total"
