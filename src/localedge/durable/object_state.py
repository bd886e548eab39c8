"""What the runtime keeps per live object: its `ctx` (`DurableObjectState`) and its slot.

The slot is the runtime's side of one object: the instance, its storage, the lock that lets
one event in at a time, how many events are running or waiting (`busy`, the overload bound)
and what `blockConcurrencyWhile` asked every event to wait for.
"""
from __future__ import annotations

import asyncio
import inspect
from typing import TYPE_CHECKING, Any, Callable

from src.localedge.durable.object_id import DurableObjectId
from src.localedge.durable.storage import DurableObjectStorage

if TYPE_CHECKING:
    from src.localedge.durable.namespace import DurableObjectNamespace


class DurableObjectState:
    """The object's `ctx`: `id`, `storage`, `blockConcurrencyWhile`, `waitUntil`."""

    def __init__(self, object_id: DurableObjectId, storage: DurableObjectStorage, slot: "ObjectSlot") -> None:
        self.id = object_id
        self.storage = storage
        self._slot = slot

    def blockConcurrencyWhile(self, fn: Callable[[], Any]) -> asyncio.Future:
        """Run `fn()`; no event reaches the object before it finishes (usually called in the constructor)."""
        result = fn()
        future = asyncio.ensure_future(result) if inspect.isawaitable(result) else _done(result)
        self._slot.blockers.append(future)
        return future

    def waitUntil(self, awaitable: Any) -> None:
        self._slot.namespace.track(awaitable)

    def abort(self, reason: str | None = None) -> None:
        self._slot.namespace.evict(self._slot, force=True)
        raise RuntimeError(reason or "Durable Object abort requested")


def _done(value: Any) -> asyncio.Future:
    f = asyncio.get_running_loop().create_future()
    f.set_result(value)
    return f


class ObjectSlot:
    __slots__ = ("namespace", "id", "instance", "state", "storage", "lock", "busy", "blockers")

    def __init__(self, namespace: "DurableObjectNamespace", object_id: DurableObjectId) -> None:
        self.namespace = namespace
        self.id = object_id
        self.instance: Any = None
        self.storage: DurableObjectStorage | None = None
        self.state: DurableObjectState | None = None
        self.lock = asyncio.Lock()
        self.busy = 0
        self.blockers: list[asyncio.Future] = []
