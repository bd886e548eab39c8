"""Worked examples of each algorithm: the numbers an operator would check by hand."""
from src.tollgate.algorithms import Limit, step

T0 = 1_764_000_000_000 - 1_764_000_000_000 % 60_000    # start of a minute


def test_gcra_burst_then_steady_rate():
    limit = Limit("gcra", 20, 1000, 40)                  # "20/second", burst 40
    state = None
    for i in range(40):
        s = step(limit, state, 1, T0)
        assert s.allowed and s.remaining == 39 - i
        state = s.state
    denied = step(limit, state, 1, T0)
    assert not denied.allowed and denied.retry_after_ms == 50 and denied.reset_ms == 50   # next unit in 50 ms
    assert step(limit, state, 1, T0 + 50).allowed
    assert step(limit, state, 20, T0 + 1000).allowed and not step(limit, state, 21, T0 + 1000).allowed


def test_gcra_non_integer_emission_interval_stays_exact():
    limit = Limit("gcra", 3, 1000, 1)                    # one unit every 333.33 ms
    s = step(limit, None, 1, T0)
    denied = step(limit, s.state, 1, T0 + 333)
    assert not denied.allowed and denied.retry_after_ms == 1
    assert step(limit, s.state, 1, T0 + 334).allowed


def test_fixed_window_resets_on_the_edge():
    limit = Limit("fixed_window", 100, 60_000, 100)
    assert step(limit, None, 0, T0).reset_ms == 0          # full: no more quota to wait for
    s = step(limit, None, 100, T0 + 59_000)
    assert s.allowed and s.reset_ms == 1000
    denied = step(limit, s.state, 1, T0 + 59_999)
    assert not denied.allowed and denied.retry_after_ms == 1
    assert step(limit, s.state, 100, T0 + 60_000).allowed


def test_sliding_window_weighs_the_previous_window():
    limit = Limit("sliding_window", 100, 60_000, 100)
    s = step(limit, None, 100, T0 + 30_000)
    # 15 s into the next minute, 75% of the previous 100 still count: 25 fit
    at = T0 + 75_000
    assert step(limit, s.state, 25, at).allowed
    denied = step(limit, s.state, 26, at)
    assert not denied.allowed
    assert step(limit, s.state, 26, at + denied.retry_after_ms).allowed
    assert denied.retry_after_ms == 600                   # 100 * (45000 - e) <= 74 * 60000 at e = 15600


def test_cost_above_capacity_never_fits():
    for limit in (Limit("gcra", 10, 1000, 5), Limit("fixed_window", 5, 1000, 5), Limit("sliding_window", 5, 1000, 5)):
        assert limit.capacity == 5
        s = step(limit, None, 6, T0)
        assert not s.allowed and s.retry_after_ms >= 1
        assert step(limit, None, 5, T0).allowed


def test_halving_a_gcra_rate_keeps_the_arrival_time_instead_of_locking_out():
    fast, slow = Limit("gcra", 20, 1000, 20), Limit("gcra", 10, 1000, 10)
    s = step(fast, None, 10, T0)                         # half the burst used: 500 ms of backlog
    after = step(slow, s.state, 1, T0)
    # 500 ms backlog + 100 ms for this unit, of a 1000 ms tolerance: 4 whole units left
    assert after.allowed and after.remaining == 4 and after.reset_ms == 100
    assert step(slow, s.state, 10, T0 + 500).allowed


def test_switching_algorithm_starts_the_rule_afresh():
    g = step(Limit("gcra", 5, 1000, 5), None, 5, T0)
    for other in (Limit("fixed_window", 5, 1000, 5), Limit("sliding_window", 5, 1000, 5)):
        s = step(other, g.state, 5, T0)
        assert s.allowed and s.reset_ms <= 2000
        back = step(Limit("gcra", 5, 1000, 5), s.state, 5, T0)
        assert back.allowed


def test_state_fits_javascript_numbers_even_for_large_counts():
    """Durable Object SQL and JSON carry doubles: every stored int must stay below 2^53."""
    year_2100 = 4_102_444_800_000
    for limit in (Limit("gcra", 1_000_000, 86_400_000, 1_000_000), Limit("gcra", 7, 3, 9),
                  Limit("fixed_window", 10**9, 86_400_000, 10**9), Limit("sliding_window", 10**9, 60_000, 10**9)):
        for now in (T0, year_2100):
            state = None
            for i in range(3):
                s = step(limit, state, limit.capacity // 3, now + i)
                state = s.state
                assert all(type(v) is int and abs(v) < 2**53 for v in state), (limit, state)


def test_gcra_arrival_time_is_kept_exactly():
    limit = Limit("gcra", 3, 1000, 3)                    # 333.33 ms per unit
    s = step(limit, None, 1, T0)
    assert s.state == (T0 + 333, 1, -5)                  # T0 + 333 + 1/3 ms, written with count 3
