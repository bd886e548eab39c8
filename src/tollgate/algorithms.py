"""Every limiter algorithm, each a pure function over three integers.

One file, gubernator style: `step(limit, state, cost, now_ms)` answers whether
`cost` units fit now, the state to store if they are admitted, what is left,
and when to retry. Time is integer milliseconds, state is three ints, so a
rule costs O(1) memory whatever its limit and never drifts from float
rounding. A clock that steps backwards never admits anything extra: GCRA
measures against its stored arrival time, the window counters keep the latest
window they stored (tests/core/test_properties.py checks both against a
reference on the true clock).

`KERNELS` maps an algorithm to its kernel, which returns the fields of `Step`
as a plain tuple: `decide()` calls kernels directly, because building a
NamedTuple per rule costs more than the arithmetic.

GCRA keeps its theoretical arrival time exactly, as whole ms plus a remainder
in 1/count ms, so an emission interval such as 1000 ms / 3 never rounds.
"""
from __future__ import annotations

from typing import NamedTuple

GCRA = "gcra"
SLIDING_WINDOW = "sliding_window"
FIXED_WINDOW = "fixed_window"
ALGORITHMS = (GCRA, SLIDING_WINDOW, FIXED_WINDOW)
CONCURRENCY = "concurrency"     # `limit = "10 concurrent"`: requests in flight (src/tollgate/concurrency.py)

State = tuple[int, int, int]


class Limit(NamedTuple):
    algorithm: str
    count: int
    period_ms: int
    burst: int  # GCRA: how many units may arrive at once; windows: equal to count

    @property
    def capacity(self) -> int:
        """The largest cost this limit can ever admit in one request."""
        if self.algorithm == CONCURRENCY:
            return 1 << 52                  # a request takes one slot whatever its cost
        return self.burst if self.algorithm == GCRA else self.count


class Step(NamedTuple):
    allowed: bool
    state: State           # the state to store if admitted (when denied: nothing to store)
    remaining: int         # units still available right after this request
    reset_ms: int          # until more quota is available (draft-11 RateLimit `t`); 0 when full
    retry_after_ms: int    # 0 when allowed; when denied, until this cost would fit


# State layouts. Each is self-describing enough that a rule whose algorithm or
# rate was changed in the config never misreads the old state (a GCRA arrival
# time read as a window start would lock a client out for decades), and every
# int stays far below 2^53, so it survives JavaScript numbers (Durable Object
# SQL, JSON) unchanged:
#   gcra            (tat ms, tat remainder in 1/count ms, -(count + 2))
#   fixed_window    (window start ms, used, FIXED_TAG)
#   sliding_window  (window start ms, previous, current), window start aligned to the period
# A state from another algorithm (or period, for the sliding window) counts as
# no state: the changed rule starts afresh. A GCRA rule whose count changed keeps
# its arrival time, rescaled.
FIXED_TAG = -2
CONCURRENCY_TAG = -1    # concurrency (live slots, earliest expiry ms, CONCURRENCY_TAG): a summary, not a store
CONCURRENCY_RETRY_MS = 1000


def gcra(limit: Limit, state: State | None, cost: int, now_ms: int) -> tuple:
    """GCRA: a rate plus a burst, token-bucket semantics.

    Works on the backlog (arrival time minus now) in 1/count ms, so one unit
    costs exactly `period` and an emission interval such as 1000 ms / 3 never
    rounds; the numbers involved stay small, which also keeps this fast.
    """
    _, count, period, burst = limit
    cap = burst * period                    # tolerance: a full burst
    backlog = 0
    if state is not None and state[2] <= -3:
        stored = -state[2] - 2              # the count it was written with
        backlog = (state[0] - now_ms) * stored + state[1]
        if stored != count:                 # the rate changed: same arrival time, new scale
            backlog = -(-backlog * count // stored)
        if backlog < 0:
            backlog = 0
    else:
        state = None                        # none yet, or another algorithm's
    ahead = backlog + cost * period
    if ahead <= cap:
        slack = cap - ahead                 # room left: `slack // period` whole units
        left = slack // period
        # more quota: the next whole unit, `period - slack % period` away
        return (True, (now_ms + ahead // count, ahead % count, -count - 2), left,
                -(-(period - slack % period) // count) if left < burst else 0, 0)
    slack = cap - backlog
    left = slack // period if slack > 0 else 0
    retry = -(-(ahead - cap) // count) if cost * period <= cap else period
    return (False, (now_ms + backlog // count, backlog % count, -count - 2), left,
            -(-((left + 1) * period - slack) // count) if left < burst else 0, retry if retry > 1 else 1)


def fixed_window(limit: Limit, state: State | None, cost: int, now_ms: int) -> tuple:
    """Fixed window counter."""
    count, period = limit[1], limit[2]
    window = now_ms - now_ms % period
    used = 0
    if state is not None and state[2] == FIXED_TAG and window <= state[0]:
        window, used = state[0], state[1]   # same window, or the clock stepped back
    reset = window + period - now_ms        # > 0: window is now's window or later
    if used + cost <= count:
        used += cost
        return True, (window, used, FIXED_TAG), count - used, reset if used else 0, 0
    retry = reset if cost <= count else reset + period
    return (False, (window, used, FIXED_TAG), count - used if used < count else 0, reset if used else 0,
            retry if retry > 1 else 1)


def sliding_window(limit: Limit, state: State | None, cost: int, now_ms: int) -> tuple:
    """Sliding window counter (the previous window weighted by its overlap)."""
    count, period = limit[1], limit[2]
    window = now_ms - now_ms % period
    prev = cur = 0
    if state is not None and state[2] >= 0 and state[0] % period == 0:
        start = state[0]
        if window <= start:                 # same window, or the clock stepped back
            window, prev, cur = start, state[1], state[2]
            if now_ms < start:
                now_ms = start
        elif window == start + period:
            prev = state[2]
    elapsed = now_ms - window
    weighted = prev * (period - elapsed)    # previous window's share, scaled by `period`
    budget = count * period
    used_scaled = weighted + (cur + cost) * period
    if used_scaled <= budget:
        cur += cost
        left = (budget - used_scaled) // period
        more = _sliding_retry(prev, cur, left + 1, count, period, elapsed) if left < count else 0
        return True, (window, prev, cur), left, more, 0
    left = budget - weighted - cur * period
    left = left // period if left > 0 else 0
    more = _sliding_retry(prev, cur, left + 1, count, period, elapsed) if left < count else 0
    retry = _sliding_retry(prev, cur, cost, count, period, elapsed)
    return False, (window, prev, cur), left, more, retry if retry > 1 else 1


def _sliding_retry(prev: int, cur: int, cost: int, count: int, period: int, elapsed: int) -> int:
    """Earliest wait after which `cost` fits, given that nothing else happens."""
    if cost > count:
        return 2 * period - elapsed         # can never fit: say when the window is clear
    free = count - cur - cost               # room left in this window ignoring `prev`
    if free >= 0 and prev > 0:
        # need prev * (period - e) <= free * period  ->  e >= period - free * period / prev
        need = period - (free * period) // prev
        if need <= period - 1 and need >= elapsed:
            # integer floor may leave us a hair short: step to the first e that fits
            while prev * (period - need) > free * period:
                need += 1
            if need < period:
                return need - elapsed
    # next window: prev' = cur, cur' = 0: need cur * (period - e) <= (count - cost) * period
    room = count - cost
    if cur == 0:
        return period - elapsed
    need = period - (room * period) // cur
    if need < 0:
        need = 0
    while cur * (period - need) > room * period:
        need += 1
    return period - elapsed + need


def concurrency(limit: Limit, state: State | None, cost: int, now_ms: int) -> tuple:
    """Slots in flight: `state` is the bucket's summary of its live slots at `now_ms`
    (durable_objects/slots.py); the request takes one slot, whatever its cost (above 0).

    Denied: retry after 1 s, or at the earliest slot's expiry when that is sooner. A slot
    is usually freed by a request finishing, which no clock predicts, so the honest
    answer is short; the expiry is the one time known to free a slot.
    """
    count = limit[1]
    live = state[0] if state is not None and state[2] == CONCURRENCY_TAG else 0
    earliest = state[1] if live else 0
    need = 1 if cost > 0 else 0             # cost 0 looks without taking (inspect, a denial's report)
    if live + need <= count:
        return (True, (live + need, earliest if live else now_ms + limit[2], CONCURRENCY_TAG),
                count - live - need, 0, 0)
    retry = earliest - now_ms if 0 < earliest - now_ms < CONCURRENCY_RETRY_MS else CONCURRENCY_RETRY_MS
    return False, (live, earliest, CONCURRENCY_TAG), 0, retry, retry


KERNELS = {GCRA: gcra, FIXED_WINDOW: fixed_window, SLIDING_WINDOW: sliding_window, CONCURRENCY: concurrency}
"""algorithm name -> kernel returning a plain tuple (the fields of Step): what decide() calls."""

_new = tuple.__new__


def step(limit: Limit, state: State | None, cost: int, now_ms: int) -> Step:
    """Apply `cost` units of `limit` at `now_ms` to `state`."""
    return _new(Step, KERNELS[limit.algorithm](limit, state, cost, now_ms))
