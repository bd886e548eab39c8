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
        # A class-based entrypoint gets env and ctx in its constructor only: workerd calls
        # scheduled(controller, undefined, undefined) (src/workerd/io/worker.c++,
        # getHandlerFromEntrypointClass), so `env` is None here. And were a raw env passed,
        # its bindings would not be the SDK-wrapped ones (_EnvWrapper wraps self.env only).
        # Always use self.env; pinned by tests/gateway/test_edge_conformance.py.
        await run_scheduled(self.env, controller, self.ctx)
