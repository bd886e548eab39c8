"""The deny cache (worker/deny_cache.py) on the real limiter and the real ClientBucket, in
virtual time (scripts/edge_sim.py): repeats of a denial cost no bucket call, the answer
counts down, the entry ends at the retry time or the cap, the counts still reach the bucket."""
from __future__ import annotations

import json

from scripts.edge_sim import SECRET, Sim, _drive, spread
from src.tollgate.identity import Identity, client_key
from src.tollgate import clock
from src.tollgate.algorithms import Limit
from src.tollgate.decision import Decision, RuleResult
from src.tollgate.rules import MATCH_ALL, Rule
from worker import deny_cache

DAILY = {"identity": ["header:x-api-key"],
         "rules": [{"name": "daily", "limit": "5/day", "algorithm": "fixed_window"}]}
BURST = {"identity": ["header:x-api-key"], "rules": [{"name": "burst", "limit": "1/second", "burst": 2}]}


def one(sim: Sim, at: float, client: str = "alice", isolate: int = 0, path: str = "/v1/items"):
    return sim.run([(at, isolate, client, path)])[-1]


def header(result, name: str) -> str:
    return dict(result.outcome.headers)[name]


def stored(sim: Sim, client: str = "alice") -> dict:
    bucket = sim.buckets.bucket(client_key(SECRET.encode(), Identity("key", client)))
    return {n: (r.allowed, r.denied) for n, r in bucket.store.all_rows().items()}


def test_repeats_of_a_denial_cost_no_bucket_call_and_count_down():
    sim = Sim(DAILY, [40.0])
    for i in range(6):
        one(sim, i * 100.0)
    first = sim.results[-1]
    # the fifth admission left the day's quota at 0: the sixth is already answered here
    assert not first.allowed and sim.calls == 5
    repeats = [one(sim, 1000.0 + i * 1000) for i in range(30)]      # 30 s of repeats
    assert sim.calls == 5, "no repeat reached the bucket"
    assert all(not r.allowed and r.done_ms == r.sent_ms for r in repeats), "answered at once, denied"
    ts = [int(header(r, "RateLimit").split("t=")[1]) for r in [first] + repeats]
    assert ts == sorted(ts, reverse=True) and ts[0] - ts[-1] == 30   # t counts down with the clock
    assert [int(header(r, "Retry-After")) for r in repeats][:2] == [ts[1], ts[2]]
    assert header(repeats[0], "RateLimit-Policy") == header(first, "RateLimit-Policy")


def test_the_entry_ends_at_the_retry_time_then_the_bucket_decides_again():
    sim = Sim(BURST, [10.0])
    answers = [one(sim, t).allowed for t in (0.0, 1.0, 2.0)]          # burst 2: the third is denied
    # the second admission left 0: the bucket said the next is denied until its reset, so the
    # third is answered here
    assert answers == [True, True, False] and sim.calls == 2
    retry = sim.results[-1].outcome.decision.retry_after_ms
    assert not one(sim, 2.0 + retry - 1).allowed and sim.calls == 2   # still cached
    assert one(sim, 2.0 + retry + 20).allowed and sim.calls == 3       # expired: asked, admitted


def test_the_cap_bounds_an_entry_and_is_configurable():
    sim = Sim({**DAILY, "deny_cache_seconds": 5}, [10.0])
    for i in range(6):
        one(sim, i * 10.0)
    calls = sim.calls
    one(sim, 4_000.0)
    assert sim.calls == calls
    one(sim, 5_100.0)                                                  # past the 5 s cap: asked again
    assert sim.calls == calls + 1 and not sim.results[-1].allowed


def test_another_cost_another_rule_set_or_another_client_is_not_answered_from_it():
    sim = Sim({"identity": ["header:x-api-key"], "costs": {"GET /v1/big": 4},
               "rules": [{"name": "daily", "limit": "5/day", "algorithm": "fixed_window"}]}, [10.0])
    assert not one(sim, 0.0, path="/v1/big").allowed is False          # 4 of 5
    assert not one(sim, 1.0, path="/v1/big").allowed                   # 8 > 5: denied, cached for cost 4
    assert one(sim, 2.0).allowed                                       # cost 1 still fits: asked
    assert one(sim, 3.0, client="bob").allowed


def test_local_denials_reach_the_bucket_on_the_next_call_or_a_flush():
    sim = Sim({**DAILY, "deny_cache_seconds": 10}, [10.0, 10.0])
    for i in range(8):
        one(sim, i * 10.0)                                             # 5 admitted, then 3 denied here
    assert stored(sim)["daily"] == (5, 0)
    one(sim, 20_000.0)                                                 # expired: the call carries the 2
    assert stored(sim)["daily"] == (5, 4)
    one(sim, 20_010.0, isolate=1)                                      # another isolate: its own cache
    one(sim, 20_020.0)
    assert stored(sim)["daily"] == (5, 5)
    env = sim.isolates[0].env
    assert deny_cache.scope(env).unreported == {sim.results[-1].outcome and _key(sim): {"daily": 1}}
    _drive_flush(sim, env)
    assert stored(sim)["daily"] == (5, 6) and deny_cache.scope(env).entries == {}


def _key(sim: Sim) -> str:
    return next(iter(deny_cache.scope(sim.isolates[0].env).unreported))


def _drive_flush(sim: Sim, env) -> None:
    class Direct:                                   # the flush's RPC, straight to the bucket
        def getByName(self, name):
            return sim.buckets.bucket(name)
    real, env.BUCKETS = env.BUCKETS, Direct()
    try:
        with clock.use(lambda: int(sim.now)):
            _drive(deny_cache.flush(env, clear=True))
    finally:
        env.BUCKETS = real


def test_a_concurrency_rule_or_a_zero_wait_is_never_cached():
    cache = deny_cache.Scope()
    denial = Decision(False, "inflight", 1000, (RuleResult("inflight", False, False, 0, 1000, 1000),), {})
    inflight = (Rule("inflight", Limit("concurrency", 5, 1000, 5), MATCH_ALL),)
    cache.remember("k", "w", inflight, denial, 0, 60_000)
    assert cache.lookup("k", "w", 1) is None
    burst = (Rule("burst", Limit("gcra", 5, 1000, 5), MATCH_ALL),)
    cache.remember("k", "w", burst, denial._replace(retry_after_ms=0), 0, 60_000)
    assert cache.lookup("k", "w", 1) is None
    cache.remember("k", "w", burst, denial, 0, 60_000)
    assert cache.lookup("k", "w", 400).retry_after_ms == 600
    assert cache.lookup("k", "w", 1000) is None                               # the retry time: one asks
    assert cache.lookup("k", "w", 1001) is not None                           # the others wait for it
    assert cache.lookup("k", "w", 1000 + deny_cache.REFRESH_WAIT_MS + 1) is None and cache.entries == {}


def test_a_flood_against_an_exhausted_daily_quota_costs_one_call_per_isolate_per_cap():
    """The issue's goal: 1,000 requests/s over 10 isolates for two minutes, quota gone. Each
    isolate pays one call per 60 s cap to renew its entry (the others keep the denial while it
    is out), plus, once, the requests it received while its first call was out (rtt x rate)."""
    rtts = [1.0 + 15.0 * i for i in range(10)]
    sim = Sim(DAILY, rtts)
    sim.run([(i, 0, "flood", "/v1/items") for i in range(5)])          # the day's 5
    calls = sim.calls
    flood = spread(120_000, 1000, 10, start_ms=10.0, pick=lambda i: "flood")
    results = sim.run(flood)
    assert not any(r.allowed for r in results[5:])
    per_isolate = [iso.calls - (5 if iso.index == 0 else 0) for iso in sim.isolates]
    first = [1 + int(rtt * 100 / 1000) + 1 for rtt in rtts]           # 100 requests/s per isolate
    assert all(n <= f + 2 for n, f in zip(per_isolate, first)), (per_isolate, first)
    assert sim.calls - calls <= sum(first) + 10 * 2, per_isolate                     # 2 minutes / 60 s cap, +1 each
    reported = sum(d for _, d in stored(sim, "flood").values())
    assert 120_000 // 3 < reported < 120_000                         # up to the last renewal: the rest waits
    for iso in sim.isolates:                                          # ... for a flush (an operator's read)
        _drive_flush(sim, iso.env)
    assert sum(d for _, d in stored(sim, "flood").values()) == 120_000  # every denial counted


def test_deny_cache_seconds_is_checked_in_config():
    from src.tollgate.config import ConfigError, parse_config
    assert parse_config(DAILY).deny_cache_ms == 60_000
    assert parse_config({**DAILY, "deny_cache_seconds": 5}).deny_cache_ms == 5_000
    for bad in (0, 3601, "60", True, 1.5):
        try:
            parse_config({**DAILY, "deny_cache_seconds": bad})
        except ConfigError as exc:
            assert any("deny_cache_seconds" in e and "1..3600" in e for e in exc.errors), exc.errors
        else:
            raise AssertionError(f"{bad!r} accepted")


def test_a_long_flood_keeps_the_cache_bounded():
    """Renewals replace the entry; the client index does not grow with them."""
    sim = Sim({**DAILY, "deny_cache_seconds": 1}, [10.0])
    sim.run([(float(i), 0, "flood", "/v1/items") for i in range(5)])
    sim.run(spread(3000, 100, 1, start_ms=10.0, pick=lambda i: "flood"))       # 30 renewals
    cache = deny_cache.scope(sim.isolates[0].env)
    assert len(cache.entries) == 1 and [len(v) for v in cache.by_client.values()] == [1]
    assert 25 <= sim.calls - 5 <= 40


def test_a_flood_against_a_per_second_rule_costs_the_admitted_plus_one_call_per_retry_interval():
    """10/second, 300 requests/s over 3 isolates for 10 s: each isolate re-asks once per
    retry interval (100 ms) and the others wait for that answer, so the bucket sees about
    the admitted requests plus 3 x 10 calls a second, not one call per request."""
    sim = Sim({"identity": ["header:x-api-key"], "rules": [{"name": "second", "limit": "10/second", "burst": 10}]},
              [1.0, 40.0, 150.0])
    results = sim.run(spread(3000, 300.0, 3, pick=lambda i: "flood"))
    admitted = sum(r.allowed for r in results)
    assert 100 <= admitted <= 10 + 10 * 10 + 1                      # burst + rate x 10 s, never more
    assert sim.calls <= admitted + 3 * 10 * 10 * 1.2, (sim.calls, admitted)


def test_an_entry_long_past_its_retry_time_is_stale_and_a_burst_is_asked_in_full():
    sim = Sim(BURST, [10.0])
    assert [one(sim, t).allowed for t in (0.0, 1.0, 2.0)] == [True, True, False]
    later = sim.run([(5_000.0 + i, 0, "alice", "/v1/items") for i in range(3)])   # the bucket refilled
    assert [r.allowed for r in later[-3:]] == [True, True, False]
