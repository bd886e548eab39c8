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
        # workerd passes (controller, env, ctx); the instance already holds env and ctx.
        await run_scheduled(env if env is not None else self.env, controller, ctx if ctx is not None else self.ctx)
