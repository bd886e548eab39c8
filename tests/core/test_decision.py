"""decide(): one atomic verdict over every rule that applies."""
from src.tollgate.algorithms import Limit
from src.tollgate.decision import decide
from src.tollgate.rules import Rule

T0 = 1_764_000_000_000
BURST = Rule("burst", Limit("gcra", 2, 1000, 2))
DAILY = Rule("daily", Limit("fixed_window", 3, 86_400_000, 3))


def run(rules, times, cost=1):
    states, out = {}, []
    for t in times:
        d = decide(rules, states, cost, t)
        states.update(d.new_states)
        out.append(d)
    return states, out


def test_a_denial_by_one_rule_consumes_nothing_from_the_others():
    states, ds = run((BURST, DAILY), [T0, T0, T0])
    third = ds[2]
    assert not third.allowed and third.denied_by == "burst"
    assert third.new_states == {}
    daily = third.results[1]
    assert daily.allowed and daily.remaining == 1          # still one left: nothing was taken
    assert decide((DAILY,), states, 1, T0).results[0].remaining == 0   # the same view decide gives alone


def test_denied_by_is_the_rule_that_must_wait_longest():
    states, ds = run((BURST, DAILY), [T0, T0 + 1000, T0 + 2000, T0 + 3000])
    last = ds[3]
    assert not last.allowed and last.denied_by == "daily"
    assert last.retry_after_ms == (T0 - T0 % 86_400_000) + 86_400_000 - (T0 + 3000)


def test_shadow_rule_reports_but_never_denies_and_keeps_its_state():
    shadow = Rule("tight", Limit("fixed_window", 1, 60_000, 1), shadow=True)
    states, ds = run((BURST, shadow), [T0, T0 + 500])
    assert all(d.allowed for d in ds)
    second = ds[1].results[1]
    assert (second.allowed, second.shadow) == (False, True)
    assert "tight" not in ds[1].new_states                 # its state stays as it was
    assert states["tight"][1] == 1


def test_only_shadow_rules_never_deny():
    shadow = Rule("tight", Limit("gcra", 1, 60_000, 1), shadow=True)
    _, ds = run((shadow,), [T0, T0, T0])
    assert [d.allowed for d in ds] == [True, True, True]
    assert [d.results[0].allowed for d in ds] == [True, False, False]
    assert ds[1].retry_after_ms == 0 and ds[1].denied_by is None


def test_no_rules_admits():
    d = decide((), {}, 1, T0)
    assert d.allowed and d.results == () and d.new_states == {}


def test_cost_counts_against_every_rule():
    states, ds = run((Rule("m", Limit("sliding_window", 10, 60_000, 10)),), [T0, T0], cost=4)
    assert [d.results[0].remaining for d in ds] == [6, 2]
    assert not decide((Rule("m", Limit("sliding_window", 10, 60_000, 10)),), states, 3, T0).allowed


def test_a_negative_cost_is_refused_not_refunded():
    import pytest
    with pytest.raises(ValueError, match="cost"):
        decide((BURST,), {}, -1, T0)


def test_float_clock_or_cost_is_refused_so_state_stays_integer():
    import pytest
    with pytest.raises(ValueError, match="integers"):
        decide((BURST,), {}, 1, T0 + 0.5)
    with pytest.raises(ValueError, match="integers"):
        decide((BURST,), {}, 1.0, T0)
    assert all(type(v) is int for v in decide((BURST,), {}, 1, T0).new_states["burst"])
