"""Lease mode (`mode = "lease"`) on the real Worker limiter and the real ClientBucket, in
virtual time (scripts/edge_sim.py): a hot client decided in its isolates, within the stated
bound, its usage counted as units admitted; crashes only under-admit; a rule set with a
strict rule always asks; a failed call loses no counts."""
from __future__ import annotations

import random

from scripts.bench_edge import overshoot
from scripts.edge_sim import Sim, spread
from worker import leases

ID = ["header:x-api-key"]
HOT = {"identity": ID, "rules": [{"name": "minute", "limit": "18000/minute", "mode": "lease"}]}
OVER = {"identity": ID, "rules": [{"name": "minute", "limit": "6000/minute", "burst": 100, "mode": "lease"}]}
RTTS = [1.0, 40.0, 150.0]


def hot_run(tollgate: dict, n: int = 3000, per_second: float = 240.0) -> Sim:
    sim = Sim(tollgate, RTTS)
    sim.run(spread(n, per_second, len(RTTS), pick=lambda i: "hot"))
    sim.report_leases()
    return sim


def test_a_hot_client_is_decided_in_its_isolates_and_billed_what_was_admitted():
    strict = hot_run({"identity": ID, "rules": [{"name": "minute", "limit": "18000/minute"}]})
    lease = hot_run(HOT)
    admitted = sum(r.allowed for r in lease.results)
    assert admitted == sum(r.allowed for r in strict.results) == 3000          # 80% of a 300/s limit, 80/s per isolate
    assert lease.calls <= 0.1 * strict.calls, (lease.calls, strict.calls)      # at least 90% fewer calls
    assert lease.rows_written() <= 0.1 * strict.rows_written()
    local = sum(1 for r in lease.results if r.done_ms == r.sent_ms)
    assert local >= 0.9 * len(lease.results)                                    # no round trip for 90%
    assert lease.usage_admitted() == admitted                                   # units admitted, not granted


def test_over_its_limit_a_leased_client_overshoots_at_most_the_stated_bound():
    sim = hot_run(OVER, n=6000, per_second=300.0)                              # 3x the limit, 20 s
    admitted = sum(r.allowed for r in sim.results)
    assert 0 < admitted < 3000
    assert overshoot(OVER, sim.results) <= 1.0                                  # max_overshoot 1% of the limit
    assert sim.usage_admitted() == admitted


def test_a_crashed_isolate_loses_at_most_its_leases_and_never_over_admits():
    sim = Sim(OVER, RTTS)
    rng = random.Random(3)
    requests = spread(6000, 300.0, len(RTTS), pick=lambda i: "hot")
    for part in range(4):
        sim.run(requests[part * 1500:(part + 1) * 1500])
        crashed = sim.isolates[rng.randrange(len(RTTS))]
        crashed.env.tollgate_leases = leases.Book()                             # its leases are gone
    sim.report_leases()
    admitted = sum(r.allowed for r in sim.results)
    assert 0 < admitted < 3000 and overshoot(OVER, sim.results) <= 1.0
    lost = admitted - sim.usage_admitted()              # spent in a crashed isolate, never reported
    assert 0 <= lost <= 4 * 2 * 10, lost                # at most its two leases of burst // 10 per crash


def test_a_rule_set_with_a_strict_rule_always_asks_its_bucket():
    mixed = {"identity": ID, "rules": [{"name": "minute", "limit": "6000/minute", "mode": "lease"},
                                       {"name": "hourly", "limit": "100000/hour"}]}
    sim = hot_run(mixed, n=600)
    assert sim.calls >= 600 and sim.usage_admitted() == 600


def test_a_failed_call_keeps_what_it_carried_for_the_next():
    book = leases.Book()
    book.spent["k"] = {"minute": [3, 3]}
    ask = book.ask("k", (), 0)
    assert ask.spent == (("minute", 3, 3),) and "k" not in book.spent
    book.lost(ask, "k")
    assert book.ask("k", (), 0).spent == (("minute", 3, 3),)


def test_a_rule_set_with_a_concurrency_rule_is_decided_by_the_bucket():
    with_slots = {"identity": ID, "rules": [{"name": "minute", "limit": "18000/minute", "mode": "lease"},
                                            {"name": "inflight", "limit": "100000 concurrent"}]}
    sim = hot_run(with_slots, n=300)
    assert sim.calls >= 300 and sum(r.allowed for r in sim.results) == 300
