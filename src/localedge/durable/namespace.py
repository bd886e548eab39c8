"""Durable Object namespaces: ids, stubs and events with Cloudflare's call semantics.

The id, the stub and the per-object state live in `object_id.py`, `stub.py` and
`object_state.py`; this module delivers events to objects:

- `idFromName(name)` is deterministic (sha256 of the class name and the name,
  64 hex digits like a real id); `newUniqueId()` is random; `getByName(name)`
  is `get(idFromName(name))` and the object sees `ctx.id.name`.
- A stub method call is async; arguments and the result are structured-clone
  copies (`workers.rpc.clone`): tuples, bytearrays, functions and arbitrary
  objects are refused with TypeError before anything runs.
- One event at a time per object: an asyncio.Lock per live object covers RPC
  calls and alarms, from constructor to commit. A call that arrives back at an
  object already on the caller's event chain (A -> B -> A) runs without the
  lock, as Cloudflare's input gate lets it in while A awaits its RPC.
- Each event's SQL writes are committed before its result or exception is
  delivered (the output gate).
- An exception in the object reaches the caller as `RpcError` (the traceback
  goes to the runtime's log, not to the caller).
- Live objects are kept in an LRU; the least recently used idle ones are
  evicted (their SQLite connection closed) beyond `max_live`.
- Each object's queue is bounded: with `max_queued` events already running or
  waiting for it, a new call fails at once with `OverloadedError`
  (`.overloaded = True`), as Cloudflare's "Durable Object is overloaded".
  Cloudflare documents no exact bound (a soft limit of about 1,000 requests/s
  per object, then a queue, then that error); `DEFAULT_MAX_QUEUED` is ours.
"""
from __future__ import annotations

import contextlib
import contextvars
import hashlib
import inspect
import itertools
import logging
import secrets
from collections import OrderedDict
from pathlib import Path
from typing import Any, AsyncIterator, Callable

from workers.rpc import JsDict, OverloadedError, RpcError, clone

from src.localedge.durable.alarms import AlarmScheduler
from src.localedge.durable.object_id import DurableObjectId
from src.localedge.durable.object_state import DurableObjectState, ObjectSlot
from src.localedge.durable.storage import DurableObjectStorage
from src.localedge.durable.stub import DurableObjectStub

log = logging.getLogger("localedge.durable")

# Events one object may have running or waiting before a new call is refused as overloaded.
DEFAULT_MAX_QUEUED = 256

# The objects whose events are on the current task's call chain.
_chain: contextvars.ContextVar[tuple] = contextvars.ContextVar("localedge_do_chain", default=())


class DurableObjectNamespace:
    """The env binding of one Durable Object class."""

    def __init__(self, cls: type, state_dir: Path, env_ref: Callable[[], Any], alarms: AlarmScheduler,
                 track: Callable[[Any], None], max_live: int = 2000, max_queued: int = DEFAULT_MAX_QUEUED) -> None:
        self.cls = cls
        self.class_name = cls.__name__
        self.dir = state_dir / "do" / self.class_name
        self._env_ref = env_ref
        self.alarms = alarms
        self.track = track
        self.max_live = max_live
        self.max_queued = max_queued
        self.overloads = 0   # calls refused as overloaded, for tests and benchmarks
        self._live: OrderedDict[str, ObjectSlot] = OrderedDict()
        self.calls = 0  # RPC calls delivered, for tests and benchmarks
        self.evictions = 0

    # ------------------------------------------------------------ ids and stubs
    def idFromName(self, name: str) -> DurableObjectId:
        digest = hashlib.sha256(f"{self.class_name}\x00{name}".encode()).hexdigest()
        return DurableObjectId(digest, str(name))

    def idFromString(self, hex_id: str) -> DurableObjectId:
        text = str(hex_id).lower()
        if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
            raise TypeError(f"Invalid Durable Object ID: {hex_id!r} (expected 64 hex digits)")
        return DurableObjectId(text)

    def newUniqueId(self, options: Any = None) -> DurableObjectId:
        return DurableObjectId(secrets.token_hex(32))

    def get(self, object_id: DurableObjectId, options: Any = None) -> DurableObjectStub:
        if not isinstance(object_id, DurableObjectId):
            raise TypeError(f"get() expects a DurableObjectId, got {type(object_id).__name__}")
        return DurableObjectStub(self, object_id)

    def getByName(self, name: str, options: Any = None) -> DurableObjectStub:
        return DurableObjectStub(self, self.idFromName(name))

    def jurisdiction(self, name: str) -> "DurableObjectNamespace":
        return self

    # ------------------------------------------------------------ events
    def _slot(self, object_id: DurableObjectId) -> ObjectSlot:
        key = object_id._hex
        slot = self._live.get(key)
        if slot is None:
            slot = self._live[key] = ObjectSlot(self, object_id)
        else:
            self._live.move_to_end(key)
            if slot.id.name is None and object_id.name is not None:
                slot.id.name = object_id.name
        return slot

    def _ensure_instance(self, slot: ObjectSlot) -> Any:
        if slot.instance is None:
            if slot.storage is None:
                hex_id = slot.id._hex
                if slot.id.name is None:
                    slot.id.name = self.alarms_name(hex_id)
                slot.storage = DurableObjectStorage(self.dir / f"{hex_id}.sqlite", self.alarms,
                                                    (self.class_name, hex_id), slot.id.name)
                slot.state = DurableObjectState(slot.id, slot.storage, slot)
            slot.instance = self.cls(slot.state, self._env_ref())
        return slot.instance

    def alarms_name(self, hex_id: str) -> str | None:
        """The name an object with a persisted alarm was created under (it wakes by id alone)."""
        return self.alarms.name_of((self.class_name, hex_id))

    async def _event(self, slot: ObjectSlot, run: Callable[[Any], Any]) -> Any:
        """One event: construct if needed, run, commit, then hand back the result."""
        storage = None
        chain = _chain.get()
        token = _chain.set(chain + (slot,))
        try:
            storage = slot.storage
            if storage is not None:
                storage.begin_event()
            try:
                instance = self._ensure_instance(slot)
            except BaseException:
                if slot.storage is not None:
                    slot.storage.end_event()
                raise
            storage = slot.storage
            storage.begin_event()
            if slot.blockers:
                blockers, slot.blockers = slot.blockers, []
                for b in blockers:
                    await b
            try:
                result = run(instance)
                if inspect.isawaitable(result):
                    result = await result
            finally:
                storage.end_event()  # output gate: commit before anything is delivered
            return result
        finally:
            _chain.reset(token)

    async def call(self, object_id: DurableObjectId, method: str, args: list, kwargs: dict) -> Any:
        slot = self._slot(object_id)
        if slot.busy >= self.max_queued and slot not in _chain.get():
            self.overloads += 1
            raise OverloadedError("Error", f"Durable Object is overloaded. Too many requests queued "
                                           f"({slot.busy} waiting for this object; the local bound is {self.max_queued}).")
        slot.busy += 1
        self.calls += 1
        if len(self._live) > self.max_live:
            self._evict_idle()

        def run(instance: Any) -> Any:
            fn = getattr(instance, method, None)
            if fn is None or method.startswith("_") or not callable(fn):
                raise TypeError(f'The RPC receiver does not implement the method "{method}".')
            return fn(*args, **kwargs)

        try:
            try:
                if slot in _chain.get():
                    result = await self._event(slot, run)
                else:
                    async with slot.lock:
                        result = await self._event(slot, run)
            except Exception as exc:
                log.error("%s %s: %s() raised", self.class_name, _label(slot), method, exc_info=True)
                raise RpcError(type(exc).__name__, str(exc)) from None
            return clone(result)
        finally:
            slot.busy -= 1

    async def run_alarm(self, hex_id: str, name: str | None, info: JsDict) -> None:
        """Deliver `alarm(info)` as one event (AlarmScheduler's runner)."""
        slot = self._slot(DurableObjectId(hex_id, name))
        slot.busy += 1
        if len(self._live) > self.max_live:
            self._evict_idle()

        def run(instance: Any) -> Any:
            handler = getattr(instance, "alarm", None)
            if handler is None:
                raise TypeError(f"{self.class_name} has an alarm set but no alarm() handler")
            return handler(info)

        try:
            async with slot.lock:
                try:
                    await self._event(slot, run)
                except Exception:
                    log.error("%s %s: alarm() raised", self.class_name, _label(slot), exc_info=True)
                    raise
        finally:
            slot.busy -= 1

    # ------------------------------------------------------------ eviction
    def _evict_idle(self) -> None:
        excess = len(self._live) - self.max_live
        if excess <= 0:
            return
        # least recently used first; look at a few beyond the excess before scanning everything
        for candidates in (list(itertools.islice(self._live.values(), excess + 32)), list(self._live.values())):
            for slot in candidates:
                if excess <= 0:
                    return
                if slot.busy == 0 and not slot.lock.locked() and slot.id._hex in self._live:
                    self.evict(slot)
                    excess -= 1

    def evict(self, slot: ObjectSlot, force: bool = False, fast: bool = False) -> None:
        self._live.pop(slot.id._hex, None)
        if slot.storage is not None:
            try:
                slot.storage.close(fast)
            except Exception:  # pragma: no cover - closing a broken connection
                log.exception("closing %s storage", self.class_name)
        slot.instance = slot.storage = slot.state = None
        self.evictions += 1

    def live_count(self) -> int:
        return len(self._live)

    def live_instance(self, name: str) -> Any:
        """The constructed instance of the object named `name`, or None when it is not live.
        Calling it directly bypasses the input gate: for tooling that shows what the gate prevents."""
        slot = self._live.get(self.idFromName(name)._hex)
        return slot.instance if slot is not None else None

    @contextlib.asynccontextmanager
    async def occupied(self, name: str) -> AsyncIterator[None]:
        """Hold the object named `name` as one long event would: every call queues behind it
        (and beyond `max_queued` is refused as overloaded) until the block ends."""
        slot = self._slot(self.idFromName(name))
        async with slot.lock:
            yield

    def close(self) -> None:
        for slot in list(self._live.values()):
            self.evict(slot, force=True, fast=True)

    # ------------------------------------------------------------ in-process inspection
    def storage_path(self, name: str) -> Path:
        return self.dir / f"{self.idFromName(name)._hex}.sqlite"


def _label(slot: ObjectSlot) -> str:
    return slot.id.name if slot.id.name is not None else slot.id._hex[:12]
