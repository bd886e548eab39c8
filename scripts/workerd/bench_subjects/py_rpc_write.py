"""Floor 3 for `scripts/bench workerd`: the RPC floor plus one durable SQLite write per call.

Why: any limiter that keeps an admitted decision across a crash writes a row per decision,
and on workerd that write's commit (SQLite's WAL frame and its fsync, workerd
src/workerd/io/actor-sqlite.c++) costs CPU in the same process whatever language decides.
Tollgate above this floor is its own Python; above the RPC floor it is that plus the commit.
The row changes on every call (a counter), so SQLite really writes a page each time.
"""
from workers import DurableObject, Response, WorkerEntrypoint


class Counter(DurableObject):
    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        sql = ctx.storage.sql
        # Under the SDK's wrapper, as Tollgate's durable_objects/sql.py does: the floor is the
        # platform's cost of a write, not the wrapper's conversions.
        self.sql = getattr(sql, "_binding", sql)
        self.sql.exec("CREATE TABLE IF NOT EXISTS n (k INTEGER PRIMARY KEY, v INTEGER NOT NULL)")

    async def decide(self, payload):
        self.sql.exec("INSERT INTO n (k, v) VALUES (0, 1) ON CONFLICT(k) DO UPDATE SET v = v + 1")
        return "ok"


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        stub = self.env.COUNTER.getByName(request.headers.get("x-api-key") or "anon")
        return Response(await stub.decide("{}"))
