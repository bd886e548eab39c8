"""Brute-force reference limiters: a full log of admitted (time, cost), exact fractions.

They answer the same question as `src/tollgate/algorithms.py` by replaying
everything ever admitted, with no cleverness, so the O(1)-state kernels can
be checked against them. Times given to a reference are already monotonic
(the property tests clamp the clock): the reference is "what should happen
on a well-behaved clock".
"""
from __future__ import annotations

from fractions import Fraction

from src.tollgate.algorithms import FIXED_WINDOW, GCRA, SLIDING_WINDOW, Limit


class Reference:
    def __init__(self, limit: Limit) -> None:
        self.limit = limit
        self.log: list[tuple[int, int]] = []      # admitted (time ms, cost), in time order

    def record(self, now: int, cost: int) -> None:
        assert not self.log or now >= self.log[-1][0], "reference times must not go backwards"
        self.log.append((now, cost))

    # -------------------------------------------------------------- verdicts

    def available(self, now: int) -> Fraction:
        """Units that could be admitted at `now` (a fraction for the token bucket)."""
        algo, count, period, burst = self.limit
        if algo == GCRA:
            return self._tokens(now)
        ws = now - now % period
        cur = sum(c for t, c in self.log if ws <= t <= now)
        if algo == FIXED_WINDOW:
            return Fraction(count - cur)
        assert algo == SLIDING_WINDOW
        prev = sum(c for t, c in self.log if ws - period <= t < ws)
        weighted = Fraction(prev * (period - (now - ws)), period)
        return count - weighted - cur

    def admits(self, now: int, cost: int) -> bool:
        return self.available(now) >= cost

    def remaining_after(self, now: int, cost: int) -> int:
        """Whole units left right after admitting `cost` at `now`."""
        left = self.available(now) - cost
        return int(left // 1)

    def _tokens(self, now: int) -> Fraction:
        """Token bucket replay: starts full at `burst`, refills count/period per ms, capped at burst."""
        _, count, period, burst = self.limit
        rate = Fraction(count, period)
        tokens = Fraction(burst)
        last = None
        for t, c in self.log:
            if last is not None:
                tokens = min(Fraction(burst), tokens + (t - last) * rate)
            tokens -= c
            last = t
        if last is not None:
            tokens = min(Fraction(burst), tokens + (now - last) * rate)
        return tokens

    # -------------------------------------------------------------- bounds

    def admitted_between(self, start: int, end: int) -> int:
        """Cost admitted at times in [start, end]."""
        return sum(c for t, c in self.log if start <= t <= end)


def window_bound_violations(limit: Limit, log: list[tuple[int, int]]) -> list[str]:
    """What no limiter may ever do, whatever its internals, over an admitted log (monotonic times).

    GCRA: in any closed interval [a, b], at most burst + (b - a) * count / period.
    Fixed and sliding window counters: at most `count` in any aligned window,
    and (sliding) at most 2 * count in any span shorter than one period.
    """
    algo, count, period, burst = limit
    problems = []
    times = sorted({t for t, _ in log})
    if algo == GCRA:
        for i, a in enumerate(times):
            for b in times[i:]:
                got = sum(c for t, c in log if a <= t <= b)
                if got > burst + Fraction((b - a) * count, period):
                    problems.append(f"{got} admitted in [{a}, {b}] > burst {burst} + refill")
        return problems
    for ws in {t - t % period for t in times}:
        got = sum(c for t, c in log if ws <= t < ws + period)
        if got > count:
            problems.append(f"{got} admitted in window [{ws}, {ws + period}) > {count}")
    if algo == SLIDING_WINDOW:
        for a in times:
            got = sum(c for t, c in log if a <= t < a + period)
            if got > 2 * count:
                problems.append(f"{got} admitted in [{a}, {a + period}) > 2 * {count}")
    return problems
