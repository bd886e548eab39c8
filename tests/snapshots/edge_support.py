"""The repo's Worker in the local runtime, configured for the snapshot tests: short
snapshot delay, few shards, D1 USAGE_DB whose migrations/ the runtime applies at
start as `wrangler d1 migrations apply --local` does (src/localedge/d1.py)."""
from __future__ import annotations

import asyncio
import json
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

from tests.gateway.support import ROOT, SECRETS, write_config

MIGRATIONS = ROOT / "migrations"
TOLLGATE = {
    "identity": ["header:x-api-key"],
    "rules": [
        {"name": "burst", "limit": "5/second", "burst": 5},
        {"name": "minute", "limit": "20/minute", "algorithm": "fixed_window"},
        {"name": "daily", "limit": "12/day", "algorithm": "fixed_window", "shadow": True},
    ],
}
VARS = {"SNAPSHOT_DELAY_MS": "20", "OUTBOX_SHARDS": "4", "FLUSH_LEASE_MS": "60000"}


def snapshot_config(folder: Path, vars: dict | None = None, tollgate: dict | None = None) -> Path:
    path = write_config(folder, tollgate or TOLLGATE, vars={**VARS, **(vars or {})})
    with path.open("a") as f:
        f.write('\n[[d1_databases]]\nbinding = "USAGE_DB"\ndatabase_name = "tollgate-usage"\n'
                'database_id = "00000000-0000-0000-0000-000000000000"\n'
                f"migrations_dir = {json.dumps(str(MIGRATIONS))}\n")
    return path


@asynccontextmanager
async def edge(folder: Path, vars: dict | None = None, state: Path | None = None) -> AsyncIterator[Any]:
    """The local runtime in-process (real HTTP on a free port), crons off: tests trigger them."""
    from src.localedge import LocalEdge
    config = snapshot_config(folder, vars)
    state = state or folder / "state"
    e = LocalEdge(config, state, port=0, build=False, crons=False)
    await e.start()
    try:
        yield e
    finally:
        await e.stop()


def rules_of(tollgate: dict = TOLLGATE) -> tuple:
    from src.tollgate.config import parse_config
    cfg = parse_config(tollgate)
    return tuple(cfg.rules)


async def outbox_depth(env: Any, shards: int = 4) -> int:
    total = 0
    for i in range(shards):
        total += json.loads(await env.OUTBOX.getByName(f"shard-{i}").stats())["depth"]
    return total


async def wait_for(predicate, timeout_s: float = 30.0, what: str = "condition") -> None:
    """Poll an async predicate until true (alarms fire on the runtime's own timers)."""
    deadline = time.monotonic() + timeout_s
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def pushes_done(e: Any) -> bool:
    """Every bucket's push has run and been confirmed. What alarms remain are idle buckets'
    cleanup alarms (durable_objects/lifecycle.py): each such bucket has nothing pending."""
    from src.localedge.durable.namespace import DurableObjectId
    pending = e.alarms.pending()
    if any(at <= clock_now() + 1000 for at in pending.values()):
        return False                    # a push (SNAPSHOT_DELAY_MS here: 20 ms) or an early retry
    buckets = e.env.BUCKETS
    stubs = []
    for (cls, hex_id) in pending:
        if cls != "ClientBucket":
            return False
        stubs.append(buckets.get(DurableObjectId(hex_id, buckets.alarms_name(hex_id))))
    return not any(json.loads(text)["unsent"] for text in await asyncio.gather(*(s.inspect() for s in stubs)))


def clock_now() -> int:
    from src.tollgate import clock
    return clock.now_ms()


def store_totals(db: Any) -> dict[str, tuple[int, int, int, int]]:
    rows = db.rows("SELECT rule, SUM(allowed) a, SUM(admitted) c, SUM(denied) d, SUM(shadow_denied) s "
                   "FROM usage GROUP BY rule")
    return {r["rule"]: (r["a"], r["c"], r["d"], r["s"]) for r in rows}


class Ledger:
    """What the buckets answered, counted the way a bucket counts: the expected store totals."""

    def __init__(self) -> None:
        self.totals: dict[str, list[int]] = {}
        self.keys: set[tuple[str, str]] = set()

    def add(self, client: str, decision: Any, cost: int) -> None:
        if decision.allowed:
            for r in decision.results:
                t = self.totals.setdefault(r.name, [0, 0, 0, 0])
                if r.shadow and not r.allowed:
                    t[3] += 1
                else:
                    t[0] += 1
                    t[1] += cost
                self.keys.add((client, r.name))
        else:
            self.totals.setdefault(decision.denied_by, [0, 0, 0, 0])[2] += 1
            self.keys.add((client, decision.denied_by))

    def expected(self) -> dict[str, tuple[int, int, int, int]]:
        return {k: tuple(v) for k, v in self.totals.items()}


async def decide(env: Any, ledger: Ledger, client: str, rules: tuple, cost: int = 1) -> Any:
    from src.tollgate.wire import decode_decision, encode_decide
    d = decode_decision(await env.BUCKETS.getByName(client).decide(encode_decide(rules, cost)))
    ledger.add(client, d, cost)
    return d


__all__ = ["SECRETS", "snapshot_config", "edge", "rules_of", "outbox_depth", "wait_for", "pushes_done",
           "store_totals", "Ledger", "decide"]
