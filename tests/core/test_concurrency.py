"""The pure slot math and config of concurrency rules (src/tollgate/concurrency.py)."""
from __future__ import annotations

import pytest

from src.tollgate import concurrency
from src.tollgate.algorithms import CONCURRENCY_TAG, Limit
from src.tollgate.config import ConfigError, parse_config
from src.tollgate.decision import decide
from src.tollgate.headers import quota_exceeded, ratelimit_headers
from src.tollgate.rules import Rule

SLOTS = Rule("inflight", concurrency.concurrency_limit(2, 30))
RATE = Rule("minute", Limit("fixed_window", 10, 60_000, 10))
NOW = 1_800_000_000_000


def test_parse_concurrent_and_the_rule_it_makes():
    assert concurrency.parse_concurrent("10 concurrent") == 10
    assert concurrency.parse_concurrent(" 3  CONCURRENT ") == 3
    assert concurrency.parse_concurrent("10/minute") is None and concurrency.parse_concurrent(10) is None
    config = parse_config({"rules": [{"name": "inflight", "limit": "10 concurrent", "hold_seconds": 5,
                                      "shadow": True, "on_error": "closed", "match": {"paths": ["/v1/*"]}}]})
    rule = config.rules[0]
    assert (rule.limit.algorithm, rule.limit.count, rule.limit.period_ms) == ("concurrency", 10, 5000)
    assert rule.shadow and rule.on_error == "closed"
    assert parse_config({"rules": [{"name": "i", "limit": "1 concurrent"}]}).rules[0].limit.period_ms == \
        concurrency.DEFAULT_HOLD_S * 1000


@pytest.mark.parametrize("rule, error", [
    ({"limit": "0 concurrent"}, "at least 1 concurrent"),
    ({"limit": "5 concurrent", "burst": 2}, ".burst: a concurrency rule has no burst"),
    ({"limit": "5 concurrent", "algorithm": "gcra"}, ".algorithm: a concurrency rule"),
    ({"limit": "5 concurrent", "key": "ip"}, ".key: a concurrency rule counts per the request's own identity"),
    ({"limit": "5 concurrent", "hold_seconds": 0}, ".hold_seconds: expected whole seconds"),
    ({"limit": "5/second", "hold_seconds": 3}, ".hold_seconds: only a concurrency rule"),
])
def test_config_mistakes_name_the_field(rule, error):
    with pytest.raises(ConfigError) as exc:
        parse_config({"rules": [{"name": "x", **rule}]})
    assert error in str(exc.value)


def test_overrides_replace_the_slot_count_and_refuse_a_rate():
    config = parse_config({"rules": [{"name": "i", "limit": "2 concurrent", "hold_seconds": 7}],
                           "overrides": {"key:vip": {"i": "20 concurrent"}}})
    vip = config.overrides["key:vip"][0][0].limit
    assert (vip.count, vip.period_ms) == (20, 7000)
    with pytest.raises(ConfigError, match="counts requests in flight"):
        parse_config({"rules": [{"name": "i", "limit": "2 concurrent"}], "overrides": {"key:vip": {"i": "9/minute"}}})


def test_decide_takes_a_slot_and_a_rate_unit_together_or_neither():
    empty = {"inflight": (0, 0, CONCURRENCY_TAG)}
    d = decide([RATE, SLOTS], empty, 3, NOW)
    assert d.allowed and d.results[1].remaining == 1, "one slot per request, whatever its cost"
    full = {"inflight": (2, NOW + 400, CONCURRENCY_TAG)}
    d = decide([RATE, SLOTS], full, 1, NOW)
    assert not d.allowed and d.denied_by == "inflight" and d.new_states == {}
    assert d.retry_after_ms == 400, "the earliest expiry, when sooner than 1 s"
    assert decide([SLOTS], {"inflight": (2, NOW + 50_000, CONCURRENCY_TAG)}, 1, NOW).retry_after_ms == 1000


def test_summaries_count_live_slots_and_expired_ones_are_free():
    slots = {"a": (NOW - 31_000, {"inflight": 30_000}),       # expired
             "b": (NOW - 1_000, {"inflight": 30_000, "other": 500}),
             "c": (NOW, {"other": 500})}
    assert concurrency.summaries(slots, [SLOTS, RATE], NOW) == {"inflight": (1, NOW + 29_000, CONCURRENCY_TAG)}
    assert concurrency.expired(slots, NOW) == ["a"]
    assert concurrency.expired(slots, NOW + 29_000) == ["a", "b", "c"]


def test_release_tokens_cannot_be_forged():
    secret, key, slot = b"s", "ab" * 32, "0f" * 16
    token = concurrency.make_token(secret, key, slot)
    assert concurrency.read_token(secret, token) == (key, slot)
    assert concurrency.read_token(b"other secret", token) is None
    assert concurrency.read_token(secret, token.replace(slot, "1f" * 16)) is None
    assert concurrency.read_token(secret, "s1." + key + "." + slot) is None
    assert concurrency.read_token(secret, None) is None and concurrency.read_token(secret, "x" * 500) is None


def test_headers_and_problem_say_concurrent_requests():
    d = decide([SLOTS], {"inflight": (2, NOW + 9000, CONCURRENCY_TAG)}, 1, NOW)
    headers = dict(ratelimit_headers([SLOTS], d.results, True, d.retry_after_ms))
    assert headers == {"RateLimit-Policy": '"inflight";q=2;qu="concurrent-requests"',
                       "RateLimit": '"inflight";r=0', "Retry-After": "1"}
    body, _ = quota_exceeded("inflight", 1000, concurrent=2)
    assert b"2 requests of this client are in flight" in body


def test_lease_mode_is_refused_on_concurrency_rules():
    assert "always decided by the bucket" in concurrency.lease_refusal(SLOTS, "lease")
    assert concurrency.lease_refusal(SLOTS, None) is None and concurrency.lease_refusal(RATE, "lease") is None


def test_a_denial_by_a_rate_rule_reports_the_free_slots_as_they_stand():
    spent = {"minute": (NOW - NOW % 60_000, 10, -2), "inflight": (1, NOW + 9000, CONCURRENCY_TAG)}
    d = decide([RATE, SLOTS], spent, 1, NOW)
    assert not d.allowed and d.denied_by == "minute"
    assert {r.name: r.remaining for r in d.results}["inflight"] == 1, "one of two slots free, none taken"
    assert decide([SLOTS], {"inflight": (2, NOW + 9000, CONCURRENCY_TAG)}, 0, NOW).results[0].remaining == 0
