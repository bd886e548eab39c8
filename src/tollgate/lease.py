"""Leased budgets: the math and the bound (issue 13), pure and clock-free.

An isolate takes a lease of `units` of a GCRA rule from the client's bucket in one call,
spends them locally for at most `lifetime_ms`, and returns what it did not use. The bucket
charges the whole lease when it grants it (`grant`, one GCRA step of cost `units`), so a
crashed isolate can only under-admit, and the bucket's own enforcement holds for grants
whatever the number of isolates.

The bound. Let T be the lifetime, r = count / period the rule's rate, B its burst. An
admission at time t spends a unit granted at some g with t - T < g <= t. So the units
admitted in any window [a, a + W) were granted in (a - T, a + W), a window of length
W + T, and GCRA grants at most B + r x (W + T) units in any such window. Returning unused
units (`refund`) is allowed only while the lease is the last charge on the rule, where it
is exactly the history of a smaller lease (GCRA is monotone in earlier costs), so the
bound stays. Hence

    admitted in [a, a + W)  <=  B + r x W + r x T,     overshoot <= r x T.

Against the limit `count` per `period`, r x T = count x T / period: the operator's
`max_overshoot` f (a fraction of the limit, "1%" by default) gives T = f x period.
tests/edge/test_lease_bound.py checks the bound by brute force over any interleaving of
isolates, leases, returns, crashes and clock steps.

A rule whose lifetime would be shorter than a round trip far from its object saves
nothing (a per-second burst rule at 1% gives 10 ms): `unleasable` refuses it, as config
validation must (src/tollgate/lease_config.py). The Worker's side is worker/leases.py, the
bucket's durable_objects/lease_desk.py, the RPC text src/tollgate/lease_wire.py.
"""
from __future__ import annotations

from typing import NamedTuple

from src.tollgate.algorithms import GCRA, Limit, State, gcra

DEFAULT_MAX_OVERSHOOT = 0.01
MIN_LIFETIME_MS = 250      # below this a lease ends before a far isolate's round trip (1..150 ms) pays off


class Lease(NamedTuple):
    units: int
    granted_ms: int
    expires_ms: int        # spend only before this: granted_ms + lifetime
    charged: State         # the rule's state right after the grant (see `refund`)


def lifetime_ms(limit: Limit, max_overshoot: float) -> int:
    """T = f x period: then r x T = f x count, the overshoot the operator accepts."""
    return int(max_overshoot * limit.period_ms)


def unleasable(limit: Limit, max_overshoot: float) -> str | None:
    """Why this rule cannot be leased within `max_overshoot`, or None."""
    if limit.algorithm != GCRA:
        return f"mode = \"lease\" needs a GCRA rule (the bound is proven for GCRA), not {limit.algorithm}"
    if not 0 < max_overshoot <= 0.5:
        return f"max_overshoot must be above 0% and at most 50%, got {max_overshoot:.4%}"
    life = lifetime_ms(limit, max_overshoot)
    if life < MIN_LIFETIME_MS:
        return (f"at max_overshoot {max_overshoot:.2%} of a {limit.period_ms} ms period a lease lives "
                f"{life} ms, under {MIN_LIFETIME_MS} ms: it would end before a far isolate's round trip "
                f"pays off; raise max_overshoot or use a longer period")
    return None


def lease_units(limit: Limit, max_overshoot: float, observed_per_s: float) -> int:
    """What to ask for: what this isolate spends in half a lifetime at its observed rate (so
    the lease is spent before it ends, while the next is asked for), at least 1, at most a
    tenth of the burst (so ten isolates cannot hold the whole burst). Units a lease ends
    with are charged and lost unless the return finds it the last charge (`refund`)."""
    want = int(observed_per_s * lifetime_ms(limit, max_overshoot) / 2000) + 1
    return max(1, min(want, max(1, limit.burst // 10)))


def worth_leasing(limit: Limit, max_overshoot: float, observed_per_s: float) -> bool:
    """Ask for a lease only when this isolate would spend at least two units in one lifetime
    at its observed rate: a cold client's lease would expire unspent, charging quota for
    nothing, and its every request pays the round trip anyway (README, lease mode)."""
    return observed_per_s * lifetime_ms(limit, max_overshoot) >= 2000


def grant(limit: Limit, state: State | None, units: int, now_ms: int,
          max_overshoot: float) -> tuple[Lease | None, State | None]:
    """Charge `units` now (one GCRA step); the lease and the new state, or (None, state)."""
    allowed, new_state, *_ = gcra(limit, state, units, now_ms)
    if not allowed:
        return None, state
    return Lease(units, now_ms, now_ms + lifetime_ms(limit, max_overshoot), new_state), new_state


def refund(limit: Limit, state: State | None, lease: Lease, units: int, now_ms: int) -> State | None:
    """Give back `units` of `lease` never admitted, only while the lease is still the last
    thing charged to the rule (`state` is what the grant left): then the arrival time rolls
    back by them, never before now, exactly as if the lease had been smaller. Once anything
    else was charged after it, a refund could hand out capacity that time already used
    (tests/edge/test_lease_bound.py found that counterexample), so the units are kept: a
    return then under-admits by at most one lease, never over-admits."""
    if state is None or state != lease.charged or state[2] > -3 or units <= 0:
        return state
    count, period = limit.count, limit.period_ms
    stored = -state[2] - 2
    backlog = (state[0] - now_ms) * stored + state[1]
    if stored != count:
        backlog = -(-backlog * count // stored)
    backlog = max(0, backlog - units * period)
    return (now_ms + backlog // count, backlog % count, -count - 2)
