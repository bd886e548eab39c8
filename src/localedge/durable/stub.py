"""The stub `getByName`/`get` return: every attribute is an async RPC method.

Arguments are structured-clone copies made in the caller (`workers.rpc.clone`), as the
SDK's `python_to_rpc` does: what cannot cross (tuples, bytearrays, functions) is refused
before anything runs.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from workers.rpc import clone

from src.localedge.durable.object_id import DurableObjectId

if TYPE_CHECKING:
    from src.localedge.durable.namespace import DurableObjectNamespace


class DurableObjectStub:
    """What `getByName`/`get` return: every attribute is an async RPC method."""

    __slots__ = ("_ns", "id", "name")

    def __init__(self, namespace: "DurableObjectNamespace", object_id: DurableObjectId) -> None:
        self._ns = namespace
        self.id = object_id
        self.name = object_id.name

    def __getattr__(self, method: str) -> Callable[..., Any]:
        if method.startswith("__"):
            raise AttributeError(method)
        ns, oid = self._ns, self.id

        def call(*args: Any, **kwargs: Any):
            # Copy (and refuse) the arguments now, in the caller, like python_to_rpc does.
            args_copy = [clone(a) for a in args]
            kwargs_copy = {k: clone(v) for k, v in kwargs.items()}
            return ns.call(oid, method, args_copy, kwargs_copy)

        return call

    def __repr__(self) -> str:
        return f"DurableObjectStub({self._ns.class_name}, {self.id!r})"
