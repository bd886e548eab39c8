"""The Worker's main module: thin on purpose.

wrangler uploads `main` as the top-level module `entry.py`, so every import
here is absolute from the bundle root. The Durable Object classes are
re-exported because workerd looks them up on the main module.
"""
from workers import WorkerEntrypoint

from durable_objects.bucket import ClientBucket
from durable_objects.outbox import SnapshotOutbox
from worker import gateway
from worker.scheduled import run as run_scheduled

__all__ = ["Default", "ClientBucket", "SnapshotOutbox"]


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return await gateway.handle(request, self.env, self.ctx)

    async def scheduled(self, controller, env=None, ctx=None):
        # workerd passes (controller, env, ctx), but through python_from_rpc
        # (src/pyodide/internal/introspection.py wrapper_func): that `env` is a JsDict of
        # raw JS bindings the SDK does not wrap (D1 batch() then gets a Python list, not a
        # JS array). Only self.env is wrapped (_EnvWrapper), so always use it.
        # Found by tests/conformance; pinned by tests/gateway/test_edge_conformance.py.
        await run_scheduled(self.env, controller, self.ctx)
