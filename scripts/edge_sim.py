"""Several isolates in virtual time, on the real code: the Worker's limiter (`worker/limiter.py`
with its deny cache) in front of real `ClientBucket`s (SQLite in memory), for
`scripts/bench edge` and tests/edge (issue 13).

Why a simulator and not a load test: the questions (bucket calls per request, rows written,
over-admission in every window, added latency) are about many isolates far from one object,
which one machine cannot host; the code under test is the real code, only the clock, the
network and the storage are stand-ins. Each isolate has its own deny cache (`tollgate_isolate`)
and its own RPC round trip; the bucket runs one event at a time, as a Durable Object does.

Driver: requests are coroutines driven by hand in virtual time. The RPC stub yields `Wake`
tokens (arrive at the bucket after half the round trip, answer after the other half); the
heap runs whatever is due next with the clock set to its time. Nothing here sleeps.
"""
from __future__ import annotations

import heapq
import json
import sqlite3
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Callable

from src.localedge.sdk import install

install()          # `import workers` finds the local runtime's SDK, as durable_objects/ expects

from durable_objects.bucket import ClientBucket  # noqa: E402
from src.tollgate import clock  # noqa: E402
from src.tollgate.identity import Identity  # noqa: E402
from worker import deny_cache, lease_step, leases, limiter  # noqa: E402
from worker.settings import load  # noqa: E402

SECRET = "edge-sim-secret"


class NoCache(deny_cache.Scope):
    """The Worker as it was before the deny cache: every request asks the bucket."""

    def lookup(self, key: str, what: str, now_ms: int) -> None:
        return None

    def remember(self, *args: Any) -> None:
        return None


class Wake:
    """Awaited by the RPC stub: resume this request at virtual time `at`."""

    __slots__ = ("at",)

    def __init__(self, at: float) -> None:
        self.at = at

    def __await__(self):
        yield self


class _Cursor:
    def __init__(self, cur: sqlite3.Cursor) -> None:
        self._rows = [dict(r) for r in cur.fetchall()] if cur.description else []
        self.rowsWritten = max(cur.rowcount, 0) if not cur.description else 0

    def toArray(self) -> list[dict]:
        return self._rows


class MemoryStorage:
    """`ctx.storage` on an in-memory SQLite; `rows_written` is what billing would count."""

    def __init__(self) -> None:
        self.db = sqlite3.connect(":memory:", isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.sql = SimpleNamespace(exec=lambda q, *a: _Cursor(self.db.execute(q, a)))
        self.alarm: int | None = None
        self.alarms_set = 0

    @property
    def rows_written(self) -> int:
        """SQLite's changed rows plus one per setAlarm(), which Cloudflare bills as a row
        written (cloudflare-docs partials/durable-objects/durable-objects-pricing.mdx)."""
        return self.db.total_changes + self.alarms_set

    async def getAlarm(self) -> int | None:
        return self.alarm

    async def setAlarm(self, at_ms: int) -> None:
        self.alarm = int(at_ms)
        self.alarms_set += 1

    async def deleteAlarm(self) -> None:
        self.alarm = None

    async def deleteAll(self) -> None:
        for (name,) in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
            self.db.execute(f'DROP TABLE "{name}"')
        self.alarm = None


class _Outbox:
    """The outbox shard stand-in: counts what the buckets push (each a billed request)."""

    def __init__(self) -> None:
        self.puts = self.records = 0

    async def put(self, rows: str) -> str:
        self.puts += 1
        self.records += len(json.loads(rows))      # snapshots.encode_rows: a JSON list
        return '{"ok":true}'


class Buckets:
    """`env.BUCKETS`: one real ClientBucket per client, shared by every isolate."""

    def __init__(self, sim: "Sim") -> None:
        self.sim, self.objects, self.storages = sim, {}, {}
        self.outbox = _Outbox()
        self.env = SimpleNamespace(OUTBOX=SimpleNamespace(getByName=lambda name: self.outbox),
                                   SNAPSHOT_DELAY_MS="5000")

    def bucket(self, name: str) -> ClientBucket:
        if name not in self.objects:
            storage = self.storages[name] = MemoryStorage()
            ctx = SimpleNamespace(storage=storage, id=SimpleNamespace(name=name))
            self.objects[name] = ClientBucket(ctx, self.env)
        return self.objects[name]


class Stub:
    """One isolate's view of one bucket: every call pays that isolate's round trip."""

    def __init__(self, sim: "Sim", isolate: "Isolate", name: str) -> None:
        self.sim, self.isolate, self.name = sim, isolate, name

    async def _call(self, method: str, *args: Any) -> Any:
        sim = self.sim
        sim.calls += 1
        sim.call_times.append(sim.now)
        self.isolate.calls += 1
        await Wake(sim.now + self.isolate.rtt_ms / 2)
        answer = await getattr(sim.buckets.bucket(self.name), method)(*args)
        await Wake(sim.now + self.isolate.rtt_ms / 2)
        return answer

    async def decide(self, payload: str, previous: str | None = None) -> str:
        return await self._call("decide", payload)

    async def count_denied(self, report: str) -> str:
        return await self._call("count_denied", report)

    async def lease(self, payload: str, previous: str | None = None) -> str:
        return await self._call("lease", payload)


@dataclass
class Isolate:
    index: int
    rtt_ms: float
    env: Any = None
    calls: int = 0


@dataclass
class Result:
    client: str
    isolate: int
    sent_ms: float
    done_ms: float
    allowed: bool
    outcome: Any = None       # worker/limiter.py Outcome (None: no rule matched)


@dataclass
class Sim:
    """N isolates with their round trips; `run(requests)` decides each request on the real code."""

    tollgate: dict
    rtts_ms: list[float]
    deny_cache: bool = True
    now: float = 0.0
    calls: int = 0
    results: list[Result] = field(default_factory=list)
    call_times: list[float] = field(default_factory=list)
    alarms_fired: int = 0

    def __post_init__(self) -> None:
        self.buckets = Buckets(self)
        self.isolates = [Isolate(i, rtt) for i, rtt in enumerate(self.rtts_ms)]
        for iso in self.isolates:
            iso.env = SimpleNamespace(TOLLGATE=json.dumps(self.tollgate), IDENTITY_SECRET=SECRET,
                                      tollgate_isolate=deny_cache.Scope() if self.deny_cache else NoCache(),
                                      tollgate_leases=leases.Book(),
                                      tollgate_spawn=lambda coro: self._push(self.now, coro),
                                      LATENCY_BATCH_COUNT="1000000000",
                                      LATENCY_BATCH_MS="1000000000")
            iso.env.BUCKETS = SimpleNamespace(getByName=lambda name, iso=iso: Stub(self, iso, name))
        self._heap: list = []
        self._seq = 0

    def rows_written(self) -> int:
        return sum(s.rows_written for s in self.buckets.storages.values())

    def _push(self, at: float, coro: Any) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (at, self._seq, coro))

    def run(self, requests: list[tuple[float, int, str, str]], on_alarm: bool = True) -> list[Result]:
        """`requests`: (time ms, isolate, client, path), any order. Bucket alarms run on time."""
        for at, iso, client, path in requests:
            self._push(at, self._request(at, self.isolates[iso], client, path))
        with clock.use(lambda: int(self.now)):
            while self._heap:
                at, _, coro = heapq.heappop(self._heap)
                self.now = max(self.now, at)
                self._fire_alarms(self.now) if on_alarm else None
                try:
                    wake = coro.send(None)
                except StopIteration:
                    continue
                self._push(wake.at, coro)
        return self.results

    def report_leases(self) -> None:
        """Every isolate sends what it spent from leases (an operator's flush), so the buckets'
        usage counters can be compared with what was admitted."""
        for iso in self.isolates:
            self._push(self.now, lease_step.report(iso.env))
        self.run([])

    def usage_admitted(self) -> int:
        """Units the buckets counted as admitted (what the flush would bill), over every rule's first row."""
        total = 0
        for bucket in self.buckets.objects.values():
            found = bucket.store.all_rows()
            if found:
                first = found[min(found)]
                total += first.admitted + sum(d["admitted"] for d in bucket.store.closed() if d["rule"] == first.rule)
        return total

    def _fire_alarms(self, now: float) -> None:
        for name, storage in self.buckets.storages.items():
            if storage.alarm is not None and storage.alarm <= now:
                storage.alarm = None
                self.alarms_fired += 1
                _drive(self.buckets.objects[name].alarm())

    async def _request(self, at: float, iso: Isolate, client: str, path: str) -> None:
        settings = load(iso.env)
        identity = Identity("key", client)
        resolution = settings.config.resolve(identity, "GET", path)
        allowed, outcome = True, None
        if resolution.rules:
            outcome = await limiter.ask_one_bucket(iso.env, None, settings, identity, resolution, resolution.cost)
            allowed = outcome.verdict == limiter.ALLOWED
        self.results.append(Result(client, iso.index, at, self.now, allowed, outcome))


def _drive(coro: Any) -> None:
    """Run a coroutine that never waits on the network (an alarm's push to the stand-in outbox)."""
    try:
        while True:
            coro.send(None)
    except StopIteration:
        pass


def worst_overshoot(times_ms: list[float], count: int, period_ms: int, burst: int) -> float:
    """max over windows [t, t + period) of admitted - (burst + count), for a GCRA rule (what
    it can admit in any window of one period), in requests: > 0 is over-admission. Windows
    start at an admission (the worst window does)."""
    times = sorted(times_ms)
    worst, j = float("-inf"), 0
    for i, start in enumerate(times):
        while j < len(times) and times[j] < start + period_ms:
            j += 1
        worst = max(worst, (j - i) - (burst + count))
    return worst if times else 0.0


def spread(n: int, per_second: float, isolates: int, start_ms: float = 0.0,
           pick: Callable[[int], str] = lambda i: "client") -> list[tuple[float, int, str, str]]:
    """`n` requests at a steady `per_second`, round-robin over isolates, client `pick(i)`."""
    gap = 1000.0 / per_second
    return [(start_ms + i * gap, i % isolates, pick(i), "/v1/items") for i in range(n)]
