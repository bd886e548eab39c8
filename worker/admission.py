"""The request sequence the gateway path and /__tollgate/allow share, written once.

Identify the client, resolve its rules and cost, refuse what can never pass (a
blocked client, a cost no rule can ever admit), ask its bucket, and turn the
verdict into either an `Admission` (go on, adding these headers) or the reply to
send instead. The two callers differ only in how a denial is worded (`Denial`):
the gateway answers 429; /allow answers its caller's deny status with
`allowed: false` in the same problem document.
"""
from __future__ import annotations

from typing import Any, NamedTuple

from src.tollgate.config import Resolution
from src.tollgate.headers import quota_exceeded
from worker.forwarding import UNCHECKED_HEADER
from worker.limiter import (ALLOWED, DENIED, OVERLOADED, UNCHECKED, ask_bucket, blocked_reply, closed_reply,
                            identify_client, impossible_cost, overloaded_reply)
from worker.platform import Incoming
from worker.replies import HeaderList, Reply
from worker.settings import Settings


class Admission(NamedTuple):
    resolution: Resolution
    headers: HeaderList      # RateLimit headers for the answer ([] when no rule matched)
    unchecked: bool          # the bucket could not be asked and every matching rule fails open
    held: Any = None         # worker.slots.Held: a concurrency slot to release when the request ends


class Denial(NamedTuple):
    """How a refusal is answered: its status and the problem's extra members."""
    status: int = 429
    allowed_member: bool = False     # /allow says `"allowed": false` in the document

    def extensions(self) -> dict[str, Any]:
        return {"allowed": False} if self.allowed_member else {}


GATEWAY_DENIAL = Denial()
UNCHECKED_HEADERS: HeaderList = [(UNCHECKED_HEADER, "bucket-unavailable")]


async def admit(env: Any, ctx: Any, settings: Settings, incoming: Incoming, method: str, path: str,
                cost: int | None = None, denial: Denial = GATEWAY_DENIAL) -> Admission | Reply:
    """The admission of one request to `method path` for `cost` units (None: the route's
    cost), or the reply that refuses it."""
    identity = await identify_client(settings, incoming.headers, env)
    if isinstance(identity, Reply):
        return identity
    resolution = settings.config.resolve(identity, method, path)
    if resolution.blocked_by is not None:
        return blocked_reply(resolution.blocked_by)
    if not resolution.rules:
        return Admission(resolution, [], False)
    cost = resolution.cost if cost is None else cost
    impossible = impossible_cost(resolution, cost)
    if impossible is not None:
        return impossible
    outcome = await ask_bucket(env, ctx, settings, identity, resolution, cost, incoming.headers)
    if outcome.verdict == ALLOWED:
        return Admission(resolution, outcome.headers, False, outcome.held)
    if outcome.verdict == UNCHECKED:
        return Admission(resolution, UNCHECKED_HEADERS, True, outcome.held)
    if outcome.verdict == DENIED:
        decision = outcome.decision
        body, headers = quota_exceeded(decision.denied_by or "", decision.retry_after_ms, denial.status,
                                       _slots_of(resolution, decision.denied_by), **denial.extensions())
        return Reply(denial.status, headers + outcome.headers, body)
    if outcome.verdict == OVERLOADED:
        return overloaded_reply(denial.status, **denial.extensions())
    return closed_reply(resolution)


def _slots_of(resolution: Resolution, rule: str | None) -> int | None:
    """The slot count of the denying rule when it is a concurrency rule (its problem says so)."""
    found = next((r for r in resolution.rules if r.name == rule), None)
    return found.limit.count if found is not None and found.limit.algorithm == "concurrency" else None
