"""The bucket's side of leased budgets (issue 13): grant, take back, count what was spent.

Why here and not in the Worker: the bucket is the one place a rule's state moves, so a
lease is charged here, in full, when it is granted (src/tollgate/lease.py proves the bound
that gives), in the same synchronous step as the request that carried the ask, and written
with it: a grant costs no row of its own.

What only memory holds: the last lease granted per rule, so that a return can be honoured
exactly while that lease is still the last charge on the rule (lease.refund). After a
restart no return matches: the units stay charged, which under-admits by at most one lease
per isolate, never over-admits.
"""
from __future__ import annotations

import secrets
from typing import Any, Mapping

from durable_objects import restore
from durable_objects.rule_row import RuleRow
from src.tollgate.algorithms import KERNELS, State
from src.tollgate.decision import Decision, decide
from src.tollgate.lease import Lease, grant, refund
from src.tollgate.lease_wire import Ask, Grant
from src.tollgate.rules import Rule
from src.tollgate.usage import period_start


class LeaseDesk:
    """Grants and returns for one bucket; `last[rule]` = (lease id, the lease)."""

    def __init__(self) -> None:
        self.last: dict[str, tuple[int, Lease]] = {}
        self._next = secrets.randbelow(1 << 30)     # ids from another instance never match ours

    def take_back(self, rules: Mapping[str, Rule], rows: Mapping[str, RuleRow], ask: Ask, now_ms: int) -> bool:
        """Refund returned units where the lease is still the last charge; True if a state moved."""
        moved = False
        for name, lease_id, units in ask.back:
            held = self.last.get(name)
            rule, row = rules.get(name), rows.get(name)
            if held is None or held[0] != lease_id or rule is None or row is None:
                continue
            before = row.state
            row.state = refund(rule.limit, row.state, held[1], units, now_ms)
            del self.last[name]
            moved = moved or row.state != before
        return moved

    def hand_out(self, rules: Mapping[str, Rule], states: dict[str, State | None], ask: Ask,
                 now_ms: int) -> list[Grant]:
        """Grant each wanted lease that fits now, charging `states` (updated in place)."""
        out = []
        for name, units, overshoot in ask.want:
            rule = rules.get(name)
            if rule is None or rule.shadow or units < 1 or units > rule.limit.burst:
                continue
            lease, state = grant(rule.limit, states.get(name), units, now_ms, overshoot)
            if lease is None:       # what is free now, if less: a smaller lease keeps the same bound
                free = KERNELS[rule.limit.algorithm](rule.limit, states.get(name), 0, now_ms)[2]
                if free < 1:
                    continue
                lease, state = grant(rule.limit, states.get(name), min(free, units), now_ms, overshoot)
                if lease is None:
                    continue
                units = lease.units
            states[name] = state
            self._next += 1
            self.last[name] = (self._next, lease)
            _, _, remaining, reset, _ = KERNELS[rule.limit.algorithm](rule.limit, state, 0, now_ms)
            out.append(Grant(name, self._next, units, lease.expires_ms, remaining, reset))
        return out

    def forget(self) -> None:
        """Storage was rewritten (reset, restore, cleanup): no lease is the last charge any more."""
        self.last.clear()


def settle(desk: LeaseDesk, store: Any, rules: tuple, cost: int, ask: Ask, now: int, may_grant: bool) -> tuple:
    """Take back, decide, grant, count: no await, so it is one atomic step."""
    period = period_start(now)
    by_name = {r.name: r for r in rules}
    rows = store.load(list(by_name.keys() | {s[0] for s in ask.spent}), period)
    if store.restored:
        restore.charge_restored(store, rules, rows, now)
    before = {n: row.state for n, row in rows.items()}
    desk.take_back(by_name, rows, ask, now)
    states = {n: row.state for n, row in rows.items()}
    decision = None if ask.renew else decide(rules, states, cost, now)
    grants = []
    if may_grant and (decision is None or decision.allowed):
        charged = dict(states, **(decision.new_states if decision else {}))
        grants = desk.hand_out(by_name, charged, ask, now)
        if decision is not None:
            decision.new_states.update({g.rule: charged[g.rule] for g in grants})
        states.update({g.rule: charged[g.rule] for g in grants})
    moved = {n: st for n, st in states.items() if st != before.get(n)}
    recorded = decision is not None and decision.allowed
    changed = store.add_leased(rows, {} if recorded else moved, ask.spent, period, write=not recorded)
    if decision is not None:
        changed = store.record(decision, rows, cost, period) or changed
    if ask.denied:
        changed = store.add_denied(dict(ask.denied), period) or changed
    return decision or Decision(True, None, 0, (), {}), grants, changed
