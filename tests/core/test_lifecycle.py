"""src/tollgate/lifecycle.py: when a bucket's state is as good as no state, and when it may go."""
from __future__ import annotations

import random

import pytest

from src.tollgate.algorithms import Limit, step
from src.tollgate.lifecycle import cleanup_due, full_at, remember
from src.tollgate.rules import Match, Rule
from src.tollgate.usage import ACCOUNTING_PERIOD_MS

T0 = 1_800_000_000_000 + 12_345
LIMITS = [
    Limit("gcra", 5, 1000, 5), Limit("gcra", 3, 1000, 7), Limit("gcra", 100, 60_000, 10),
    Limit("fixed_window", 3, 60_000, 3), Limit("fixed_window", 10, 86_400_000, 10),
    Limit("sliding_window", 4, 10_000, 4), Limit("sliding_window", 100, 60_000, 100),
]


def _decides_like_none(limit, state, t):
    return all(step(limit, state, cost, t) == step(limit, None, cost, t)
               for cost in (1, limit.capacity) if cost <= limit.capacity)


@pytest.mark.parametrize("limit", LIMITS, ids=lambda l: f"{l.algorithm}-{l.count}-{l.period_ms}")
def test_from_full_at_on_a_state_decides_exactly_like_no_state_and_not_a_ms_earlier(limit):
    rng = random.Random(limit.count * 7 + limit.period_ms)
    for _ in range(60):
        state, t = None, T0 + rng.randrange(limit.period_ms * 3)
        for _ in range(rng.randrange(1, 2 * limit.capacity + 2)):
            t += rng.choice((0, 0, 1, rng.randrange(limit.period_ms)))
            s = step(limit, state, 1, t)
            if s.allowed:
                state = s.state
        at = full_at(limit, state)
        assert _decides_like_none(limit, state, max(at, t)), (limit, state, at)
        for later in (1, 7, limit.period_ms, 5 * limit.period_ms):
            assert _decides_like_none(limit, state, max(at, t) + later)
        if at > t:  # the ms before it still remembers something
            assert not _decides_like_none(limit, state, at - 1), (limit, state, at)


def test_a_state_another_algorithm_wrote_is_already_full():
    gcra_state = step(LIMITS[0], None, 1, T0).state
    window_state = step(LIMITS[3], None, 1, T0).state
    assert full_at(LIMITS[3], gcra_state) == 0 and full_at(LIMITS[5], gcra_state) == 0
    assert full_at(LIMITS[0], window_state) == 0
    assert full_at(LIMITS[0], None) == 0


def test_cleanup_waits_for_the_hour_to_close_the_fullest_rule_and_every_known_limit():
    minute = Limit("fixed_window", 3, 60_000, 3)
    daily = Limit("fixed_window", 10, 86_400_000, 10)
    period = T0 - T0 % ACCOUNTING_PERIOD_MS
    s_minute = step(minute, None, 1, T0).state
    rows = {"minute": (s_minute, period)}
    assert cleanup_due(rows, {"minute": [minute]}, []) == period + ACCOUNTING_PERIOD_MS
    # the same row once decided by a version whose rule was daily: it waits for the day
    day_state = step(daily, None, 1, T0).state
    due = cleanup_due({"minute": (day_state, period)}, {"minute": [minute, daily]}, [])
    assert due == T0 - T0 % 86_400_000 + 86_400_000
    # no known limit for a state: nothing can be judged, the bucket stays
    assert cleanup_due(rows, {}, []) is None
    # a row without state (reset, restored) only waits for its hour
    assert cleanup_due({"x": (None, period)}, {}, []) == period + ACCOUNTING_PERIOD_MS
    # restored usage waits until no window of the known rules can reach it
    assert cleanup_due({}, {"minute": [minute]}, [period]) == period + ACCOUNTING_PERIOD_MS + 120_000


def test_remember_keeps_the_latest_few_distinct_limits_per_rule():
    limits: dict = {}
    rule = Rule("r", Limit("gcra", 1, 1000, 1), Match(None, None))
    assert remember(limits, [rule]) and not remember(limits, [rule])
    for n in range(2, 8):
        remember(limits, [Rule("r", Limit("gcra", n, 1000, n), Match(None, None))])
    assert [lim.count for lim in limits["r"]] == [4, 5, 6, 7]
