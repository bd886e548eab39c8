"""Property tests: the O(1)-state kernels against the brute-force reference (tests/core/reference.py).

What a user would notice if any of these failed: a client getting more than
its limit over some window, a refill faster or slower than configured, a
Retry-After that lies, one rule's denial eating another rule's quota, or a
clock hiccup handing out extra requests.
"""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from src.tollgate.algorithms import ALGORITHMS, FIXED_WINDOW, GCRA, SLIDING_WINDOW, Limit, step
from src.tollgate.decision import decide
from src.tollgate.rules import Rule
from tests.core.reference import Reference, window_bound_violations

# Deterministic and quick: no example database, fixed derivation, no per-example deadline.
PROPS = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                 suppress_health_check=[HealthCheck.too_slow])

EPOCH = 1_764_000_000_000      # a realistic wall clock (ms): the arithmetic must hold at this size


@st.composite
def limits(draw, algorithms=ALGORITHMS) -> Limit:
    algo = draw(st.sampled_from(algorithms))
    count = draw(st.integers(1, 12))
    period = draw(st.sampled_from([1, 7, 100, 1000, 1001, 3000]))
    burst = draw(st.integers(1, 16)) if algo == GCRA else count
    return Limit(algo, count, period, burst)


# a request: (time step in ms, cost); steps may be 0 (same ms) and large enough to cross windows
# (clusters of same-ms and close requests make denials common, big steps cross windows)
gaps = st.one_of(st.just(0), st.integers(0, 40), st.integers(0, 2500))
requests = st.lists(st.tuples(gaps, st.integers(1, 5)), min_size=1, max_size=40)


def run_monotonic(limit: Limit, reqs):
    """Feed a kernel and the reference the same monotonic stream; yield each step for checks."""
    ref = Reference(limit)
    state = None
    now = EPOCH
    for dt, cost in reqs:
        now += dt
        s = step(limit, state, cost, now)
        yield now, cost, s, ref
        if s.allowed:
            state = s.state
            ref.record(now, cost)


@PROPS
@given(limits(), requests)
def test_every_verdict_matches_the_reference_and_no_window_exceeds_the_limit(limit, reqs):
    for now, cost, s, ref in run_monotonic(limit, reqs):
        assert s.allowed == ref.admits(now, cost), (now, cost, s)
        if s.allowed:
            assert s.remaining == ref.remaining_after(now, cost)
            assert s.retry_after_ms == 0
        else:
            assert s.remaining == max(0, ref.remaining_after(now, 0))
            assert s.retry_after_ms >= 1
        assert len(s.state) == 3 and all(isinstance(v, int) for v in s.state)   # O(1): three ints
    assert window_bound_violations(limit, ref.log) == []


@PROPS
@given(limits(), requests, st.data())
def test_a_retry_at_retry_after_is_admitted_and_not_a_millisecond_sooner(limit, reqs, data):
    state = None
    now = EPOCH
    for dt, c in reqs:
        now += dt
        s = step(limit, state, c, now)
        if s.allowed:
            state = s.state
    cost = data.draw(st.integers(1, limit.capacity + 1), label="cost")
    if cost > limit.capacity:
        assert not step(limit, state, cost, now + 10 * limit.period_ms).allowed   # never fits
        return
    s = step(limit, state, cost, now)
    if s.allowed:
        return
    later = step(limit, state, cost, now + s.retry_after_ms)
    assert later.allowed, (s, later)
    if s.retry_after_ms > 1:
        assert not step(limit, state, cost, now + s.retry_after_ms - 1).allowed


@PROPS
@given(st.integers(1, 50), st.sampled_from([1000, 60_000, 3_600_000, 7]), st.integers(1, 60),
       st.integers(0, 200_000))
def test_gcra_refills_at_exactly_the_configured_rate(count, period, burst, waited):
    """Drained, then after `waited` ms exactly floor(waited * count / period) units (capped at burst) fit."""
    limit = Limit(GCRA, count, period, burst)
    s = step(limit, None, burst, EPOCH)
    assert s.allowed and s.remaining == 0
    state = s.state
    assert not step(limit, state, 1, EPOCH).allowed
    expected = min(burst, waited * count // period)
    admitted = 0
    now = EPOCH + waited
    while True:
        s = step(limit, state, 1, now)
        if not s.allowed:
            break
        admitted, state = admitted + 1, s.state
        assert admitted <= burst
    assert admitted == expected


@PROPS
@given(st.integers(1, 50), st.sampled_from([1000, 60_000, 7]), st.integers(0, 2))
def test_window_counters_refill_at_the_window_edges(count, period, extra_windows):
    for algo in (FIXED_WINDOW, SLIDING_WINDOW):
        limit = Limit(algo, count, period, count)
        start = EPOCH - EPOCH % period
        s = step(limit, None, count, start)
        assert s.allowed and s.remaining == 0
        assert not step(limit, s.state, 1, start + period - 1).allowed
        # fixed: all of it back at the edge; sliding: the previous window still weighs in fully there
        nxt = step(limit, s.state, 1, start + period)
        assert nxt.allowed == (algo == FIXED_WINDOW)
        if algo == SLIDING_WINDOW:
            # at elapsed e into the next window, floor(count * e / period) units fit
            e = period // 2
            assert step(limit, s.state, 1, start + period + e).remaining + 1 == count * e // period or \
                count * e // period == 0
        assert step(limit, s.state, count, start + (2 + extra_windows) * period).allowed


@PROPS
@given(limits(), st.lists(st.tuples(st.integers(-3000, 2500), st.integers(1, 5)), min_size=1, max_size=40))
def test_a_clock_stepping_backwards_never_admits_extra(limit, reqs):
    """Whenever the kernel admits on a jumpy clock, the reference on the true (clamped) clock admits too."""
    ref = Reference(limit)
    state = None
    now = EPOCH
    latest = None             # the latest time any admitted request carried
    for dt, cost in reqs:
        now += dt
        s = step(limit, state, cost, now)
        if s.allowed:
            true_now = now if latest is None else max(latest, now)
            assert ref.admits(true_now, cost), (now, true_now, cost)
            ref.record(true_now, cost)
            state, latest = s.state, true_now
    assert window_bound_violations(limit, ref.log) == []


@st.composite
def rule_sets(draw):
    n = draw(st.integers(2, 4))
    return tuple(Rule(f"r{i}", draw(limits()), shadow=draw(st.booleans()) if i else False) for i in range(n))


@PROPS
@given(rule_sets(), requests)
def test_all_or_nothing_across_rules(rules, reqs):
    refs = {r.name: Reference(r.limit) for r in rules}
    states: dict = {}
    now = EPOCH
    for dt, cost in reqs:
        now += dt
        d = decide(rules, states, cost, now)
        verdicts = {r.name: refs[r.name].admits(now, cost) for r in rules}
        enforcing_deny = [r.name for r in rules if not r.shadow and not verdicts[r.name]]
        assert d.allowed == (not enforcing_deny)
        assert [res.allowed for res in d.results] == [verdicts[r.name] for r in rules]
        if d.allowed:
            assert d.denied_by is None and d.retry_after_ms == 0
            assert set(d.new_states) == {r.name for r in rules if verdicts[r.name]}
            for r in rules:
                if verdicts[r.name]:
                    refs[r.name].record(now, cost)
            states.update(d.new_states)
        else:
            assert d.new_states == {}           # nothing consumed anywhere
            assert d.denied_by in enforcing_deny
            by_retry = {res.name: res.retry_after_ms for res in d.results}
            assert d.retry_after_ms == max(by_retry[n] for n in enforcing_deny) == by_retry[d.denied_by]
            # the unconsumed rules report what they still hold
            for r, res in zip(rules, d.results):
                if res.allowed:
                    assert res.remaining == refs[r.name].remaining_after(now, 0)
            if cost <= min(r.limit.capacity for r in rules if not r.shadow):
                assert decide(rules, states, cost, now + d.retry_after_ms).allowed
    for r in rules:
        assert window_bound_violations(r.limit, refs[r.name].log) == []


@PROPS
@given(limits(), limits(), requests)
def test_changing_a_rules_limit_or_algorithm_never_locks_a_client_out(old, new, reqs):
    """An operator edits a rule (rate, burst or algorithm); the stored state was written under the old one.

    Whatever the change, the client is whole again under the new limit within
    the old limit's longest drain plus two of the new periods: no state is
    ever misread as a far-future arrival time or window.
    """
    state = None
    now = EPOCH
    for dt, cost in reqs:
        now += dt
        s = step(old, state, cost, now)
        if s.allowed:
            state = s.state
    s = step(new, state, 1, now)                       # no crash, sane numbers
    assert s.remaining >= 0 and s.reset_ms >= 0 and s.retry_after_ms >= 0
    drain = -(-old.burst * old.period_ms // old.count) + old.period_ms
    later = now + drain + 2 * new.period_ms + 1
    full = step(new, state, new.capacity, later)
    assert full.allowed, (state, full)


@PROPS
@given(limits(), requests)
def test_reset_is_exactly_when_more_quota_becomes_available(limit, reqs):
    """RateLimit `t` (draft-11): the wait until at least one more unit is available; 0 when the rule is full."""
    state = None
    now = EPOCH
    for dt, cost in reqs:
        now += dt
        s = step(limit, state, cost, now)
        if s.allowed:
            state = s.state
        if s.reset_ms == 0:
            assert s.remaining == limit.capacity
            continue
        want = s.remaining + 1
        assert want <= limit.capacity
        assert not step(limit, state, want, now).allowed
        assert step(limit, state, want, now + s.reset_ms).allowed
        assert not step(limit, state, want, now + s.reset_ms - 1).allowed


@PROPS
@given(limits(), st.booleans(), requests)
def test_one_rule_decisions_are_its_steps(limit, shadow, reqs):
    """The one-rule fast path of decide() says exactly what step() says, shadow or not."""
    rule = Rule("only", limit, shadow=shadow)
    states: dict = {}
    now = EPOCH
    for dt, cost in reqs:
        now += dt
        s = step(limit, states.get("only"), cost, now)
        d = decide((rule,), states, cost, now)
        (res,) = d.results
        assert (res.name, res.allowed, res.shadow, res.remaining, res.reset_ms, res.retry_after_ms) == \
            ("only", s.allowed, shadow, s.remaining, s.reset_ms, s.retry_after_ms)
        assert d.allowed == (s.allowed or shadow)
        assert d.denied_by == (None if d.allowed else "only")
        assert d.retry_after_ms == (0 if d.allowed else s.retry_after_ms)
        assert d.new_states == ({"only": s.state} if s.allowed else {})
        states.update(d.new_states)
