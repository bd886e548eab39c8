"""What a client's next decision does when an operator edits the rules (README "Editing rules"):
limit, algorithm, window, rename with previous_names, removal, two Worker versions at once.
Each: never more than either version allows, and usage counted exactly once."""
from __future__ import annotations

from src.tollgate import clock
from src.tollgate.algorithms import Limit
from src.tollgate.rules import Match, Rule
from tests.state.fakes import make_bucket
from tests.state.support import Clock, decide, rows

ALL = Match(None, None)


def rule(name, algorithm, count, period_ms, burst=None, previous=()):
    return Rule(name, Limit(algorithm, count, period_ms, burst or count), ALL, previous_names=tuple(previous))


def admitted(b, rules, n):
    return sum(decide(b, rules).allowed for _ in range(n))


def test_a_new_gcra_rate_keeps_what_the_client_spent():
    clk = Clock()
    with clock.use(clk):
        b = make_bucket()
        assert admitted(b, [rule("r", "gcra", 5, 1000)], 5) == 5
        # doubled: the arrival time is kept, a second of backlog: the client is still spent...
        assert admitted(b, [rule("r", "gcra", 10, 1000)], 10) == 0
        clk.t += 500                    # ...and refills at the new rate: 5 units in 500 ms
        assert admitted(b, [rule("r", "gcra", 10, 1000)], 10) == 5
        # halved back: the old rate's half second of refill is all there is
        clk.t += 500
        assert admitted(b, [rule("r", "gcra", 5, 1000)], 5) == 2
    assert rows(b)["r"]["allowed"] == 12 and rows(b)["r"]["denied"] == 18


def test_a_longer_fixed_window_carries_the_count_and_a_new_algorithm_starts_the_rule_afresh():
    with clock.use(Clock()):
        b = make_bucket()
        assert admitted(b, [rule("r", "fixed_window", 3, 60_000)], 3) == 3
        assert admitted(b, [rule("r", "fixed_window", 5, 3_600_000)], 5) == 2       # 3 already used
        # another algorithm cannot read the old state: the rule starts afresh (documented)
        assert admitted(b, [rule("r", "gcra", 4, 1000)], 6) == 4
    assert rows(b)["r"]["allowed"] == 9


def test_a_renamed_rule_keeps_its_state_and_both_names_share_it_during_a_deploy():
    old = rule("burst", "gcra", 5, 1000)
    new = rule("requests", "gcra", 5, 1000, previous=["burst"])
    clk = Clock()
    with clock.use(clk):
        b = make_bucket()
        assert admitted(b, [old], 3) == 3
        d = decide(b, [new])
        assert d.allowed and d.results[0].name == "requests" and d.results[0].remaining == 1
        # two Worker versions live: the old one still asks for "burst", decided on the same row
        mixed = [decide(b, [old]).allowed, decide(b, [new]).allowed, decide(b, [old]).allowed]
        assert mixed == [True, False, False]
        assert decide(b, [old]).results[0].name == "burst"                            # answered as asked
        b.store.checkpoint()
        again = make_bucket(storage=b.ctx.storage)                                    # evicted: aliases kept
        assert not decide(again, [old]).allowed
    r = rows(again)
    assert (r["burst"]["allowed"], r["requests"]["allowed"], r["requests"]["denied"]) == (3, 2, 4)


def test_a_removed_rule_stops_limiting_and_comes_back_with_what_it_had_counted():
    daily = rule("daily", "fixed_window", 4, 86_400_000)
    burst = rule("burst", "gcra", 100, 1000)
    clk = Clock()
    with clock.use(clk):
        b = make_bucket()
        assert admitted(b, [burst, daily], 4) == 4
        assert admitted(b, [burst], 3) == 3                                           # daily removed
        clk.t += 60_000
        assert admitted(b, [burst, daily], 2) == 0                                    # back: still spent
    assert rows(b)["daily"]["allowed"] == 4 and rows(b)["burst"]["allowed"] == 7


def test_two_worker_versions_with_different_limits_never_admit_more_than_the_larger():
    small, large = rule("r", "gcra", 5, 1000), rule("r", "gcra", 10, 1000)
    with clock.use(Clock()):
        b = make_bucket()
        got = [decide(b, [small if i % 2 else large]).allowed for i in range(20)]
    assert sum(got) <= 10 and sum(got) >= 5
    assert rows(b)["r"]["allowed"] == sum(got) and rows(b)["r"]["denied"] == 20 - sum(got)


def test_previous_names_are_checked_and_travel_on_the_wire():
    import pytest

    from src.tollgate.config import ConfigError, parse_config
    from src.tollgate.wire import decode_decide, encode_decide
    cfg = parse_config({"rules": [{"name": "requests", "limit": "5/second", "previous_names": ["burst"]}]})
    assert cfg.rules[0].previous_names == ("burst",)
    assert decode_decide(encode_decide(cfg.rules, 1))[0][0].previous_names == ("burst",)
    plain = parse_config({"rules": [{"name": "burst", "limit": "5/second"}]}).rules
    assert len(__import__("json").loads(encode_decide(plain, 1))["rules"][0]) == 7   # unchanged payload
    with pytest.raises(ConfigError) as err:
        parse_config({"rules": [{"name": "a", "limit": "1/second", "previous_names": ["b"]},
                                {"name": "b", "limit": "1/second"},
                                {"name": "c", "limit": "1/second", "previous_names": ["old", "x y"]}]})
    text = "\n".join(err.value.errors)
    assert 'lists "b" in previous_names, but "b" is a rule of this config' in text
    assert "'x y' is not a rule name" in text
