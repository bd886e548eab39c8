"""`WorkerEntrypoint` and `DurableObject`: the SDK's base classes (entrypoints.py).

They only keep `ctx` and `env`; the runtime builds both. On the edge the SDK
wraps `env` and `ctx.storage` to convert JS values; here they are Python
objects already, built by the local runtime with the same shapes.
"""
from __future__ import annotations

from typing import Any


class DurableObject:
    """Base class of a Durable Object: `self.ctx` (id, storage, ...) and `self.env`."""

    def __init__(self, ctx: Any, env: Any) -> None:
        self.ctx = ctx
        self.env = env


class WorkerEntrypoint:
    """Base class of the Worker's entrypoint (`Default`): `self.ctx` (waitUntil) and `self.env`."""

    def __init__(self, ctx: Any, env: Any) -> None:
        self.ctx = ctx
        self.env = env


class WorkflowEntrypoint(WorkerEntrypoint):
    """Present for imports only; Workflows are not run by the local runtime."""


def handler(func):
    """The SDK's `@handler` for old-style `on_fetch`: values are Python already, so it is a no-op."""
    return func
