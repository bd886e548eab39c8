"""Floor 1 for `scripts/bench workerd`: a Python Worker that answers at once.

What the runtime and the SDK cost per request before any code of ours runs."""
from workers import Response, WorkerEntrypoint


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return Response("ok")
