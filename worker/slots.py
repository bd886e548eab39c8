"""The Worker's side of concurrency slots (issue 14): renew while a request is in
flight, release when its answer has been delivered, and /__tollgate/release.

When a slot is released (the bound is the rule's `hold_seconds` for a release that
never comes):
- a buffered answer (the local runtime reads the origin's body whole): once the
  origin's answer is complete, before the Worker answers the client, so a client
  that sends its next request on receiving the answer finds its slot free;
- a streamed answer (workerd and Cloudflare hand the origin's ReadableStream on
  unread): the body is piped through a TransformStream and the slot released when
  the pipe settles, in `ctx.waitUntil`: the stream ended, the client went away
  (the readable side is cancelled, so the pipe rejects) or the origin failed
  mid-body. WHATWG Streams: `pipeTo` resolves when the source closes and rejects
  when either end errors or is cancelled; Cloudflare documents piping a fetch body
  through `new TransformStream()` and `ctx.waitUntil(readable.pipeTo(writable))`
  (developers.cloudflare.com/workers/runtime-apis/streams/transformstream/);
- an origin error or timeout: at once, before the 502/504.
While it is held the Worker renews the slot every hold / 3, so a stream longer than
the hold keeps it; a slot whose renewals stopped (the isolate died) stops counting
at most `hold` after its last renewal.
"""
from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, NamedTuple

from src.tollgate.concurrency import make_token, read_token
from worker.replies import Reply, json_reply, method_not_allowed, problem_reply

log = logging.getLogger("tollgate.slots")

RELEASE_PATH = "/__tollgate/release"
TOKEN_HEADER = "Tollgate-Release"


class Held(NamedTuple):
    """A concurrency slot an admitted request holds."""
    key: str            # the client key: the bucket's name
    slot: str           # the slot id the bucket issued
    secret: bytes       # IDENTITY_SECRET, which signs the token
    renew_ms: int       # how often to renew it while the request is in flight

    @property
    def token(self) -> str:
        """What /allow hands its caller to release the slot (the gateway path never needs it)."""
        return make_token(self.secret, self.key, self.slot)


def held(secret: bytes, key: str, slot: str | None, renew_ms: int) -> Held | None:
    return None if slot is None else Held(key, slot, secret, renew_ms)


async def _call(env: Any, key: str, method: str, slot: str) -> bool:
    try:
        answer = await getattr(env.BUCKETS.getByName(key), method)(slot)
        return bool(json.loads(answer).get("released" if method == "release" else "renewed"))
    except Exception as exc:  # the slot then expires after its hold: the stated bound
        log.warning("slot %s failed (%s: %s)", method, type(exc).__name__, exc)
        return False


class Holder:
    """Renews a slot while its request runs; `done()` releases it, once."""

    def __init__(self, env: Any, slot: Held) -> None:
        self.env, self.slot, self.released = env, slot, False
        self._task: asyncio.Task | None = None
        # A timer, not a task sleeping: most requests end before their first renewal is due.
        self._timer = asyncio.get_running_loop().call_later(slot.renew_ms / 1000, self._due) if slot.renew_ms else None

    def _due(self) -> None:
        if not self.released:
            self._task = asyncio.ensure_future(self._renew())

    async def _renew(self) -> None:
        if await _call(self.env, self.slot.key, "renew", self.slot.slot) and not self.released:
            self._timer = asyncio.get_running_loop().call_later(self.slot.renew_ms / 1000, self._due)
        # else: released meanwhile, or expired: renewing would count it twice

    async def done(self) -> None:
        if self.released:
            return
        self.released = True
        if self._timer is not None:
            self._timer.cancel()
        if self._task is not None:
            self._task.cancel()
        await _call(self.env, self.slot.key, "release", self.slot.slot)


def is_stream(body: Any) -> bool:
    return body is not None and not isinstance(body, (bytes, bytearray, str))


def release_after_stream(ctx: Any, holder: Holder, stream: Any) -> Any:
    """The body to answer with: `stream` piped through a TransformStream, the slot released
    (in ctx.waitUntil) when the pipe settles: delivered, cancelled by the client, or failed."""
    from js import TransformStream     # only on the edge: the local runtime's bodies are bytes
    pair = TransformStream.new()
    piped = stream.pipeTo(pair.writable)

    async def settle() -> None:
        try:
            await piped
        except Exception as exc:        # the client went away or the origin failed mid-body
            log.info("streamed body ended early: %s", exc)
        finally:
            await holder.done()

    task = asyncio.ensure_future(settle())
    ctx.waitUntil(task)
    return pair.readable


async def hold_during(env: Any, ctx: Any, slot: Held, forward: Any) -> Reply:
    """Run `forward()` (the origin round trip) holding `slot`; release it when the answer is
    complete, or when a streamed one has been delivered."""
    holder = Holder(env, slot)
    try:
        reply = await forward()
    except BaseException:
        await holder.done()
        raise
    if is_stream(reply.body) and ctx is not None and hasattr(ctx, "waitUntil"):
        return Reply(reply.status, reply.headers, release_after_stream(ctx, holder, reply.body))
    await holder.done()
    return reply


async def handle_release(method: str, headers: dict[str, str], body: bytes, secret: bytes, env: Any) -> Reply:
    """POST /__tollgate/release with the token (header Tollgate-Release, or the body): for a
    gateway that can call out when its request ends. Twice, or a token whose slot expired:
    200 with "released": false. Not a token this deployment issued: 400."""
    if method != "POST":
        return method_not_allowed(method, ("POST",))
    token = headers.get(TOKEN_HEADER.lower()) or body.decode("utf-8", "replace").strip()
    found = read_token(secret, token)
    if found is None:
        return problem_reply(400, "Bad release token",
                             f"Send the {TOKEN_HEADER} token /__tollgate/allow answered with, in the "
                             f"{TOKEN_HEADER} header or as the body; this one was not issued here.")
    key, slot = found
    if await _call(env, key, "release", slot):
        return json_reply(200, {"released": True})
    return json_reply(200, {"released": False,
                            "detail": "The slot was not held: released already, or expired after its hold."})
