"""Floor 2 for `scripts/bench workerd`: a Python Worker calling a Python Durable Object
method that returns a constant: what any decision's RPC costs before it decides."""
from workers import DurableObject, Response, WorkerEntrypoint


class Constant(DurableObject):
    async def decide(self, payload):
        return "ok"


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        stub = self.env.CONSTANT.getByName(request.headers.get("x-api-key") or "anon")
        return Response(await stub.decide("{}"))
