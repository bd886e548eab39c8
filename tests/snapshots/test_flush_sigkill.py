"""SIGKILL of the local runtime in the middle of a cron flush, then a restart on the
same state folder: the store's totals are still exact (nothing lost, nothing twice)."""
from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
import urllib.request
from pathlib import Path

from tests.conftest import EdgeProcess
from tests.snapshots.edge_support import Ledger, decide, pushes_done, edge, outbox_depth, rules_of, snapshot_config

RULES = rules_of()[:2]
CLIENTS = 600


def usage_rows(state: Path) -> tuple[int, dict]:
    conn = sqlite3.connect(f"file:{state / 'd1' / 'USAGE_DB.sqlite'}?mode=ro", uri=True, timeout=5)
    try:
        n = conn.execute("SELECT COUNT(*) FROM usage").fetchone()[0]
        totals = {r[0]: (r[1], r[2], r[3], r[4]) for r in conn.execute(
            "SELECT rule, SUM(allowed), SUM(admitted), SUM(denied), SUM(shadow_denied) FROM usage GROUP BY rule")}
        return n, totals
    finally:
        conn.close()


def trigger(url: str) -> None:
    try:
        urllib.request.urlopen(f"{url}/__scheduled?cron=*/5+*+*+*+*", timeout=60).read()
    except Exception:
        pass  # killed mid-request: expected


def outbox_entries(url: str) -> int:
    req = urllib.request.Request(f"{url}/__tollgate/metrics", headers={"Authorization": "Bearer test-admin-token"})
    text = urllib.request.urlopen(req, timeout=10).read().decode()
    return sum(int(float(line.rsplit(" ", 1)[1])) for line in text.splitlines()
               if line.startswith("tollgate_outbox_entries{"))


def test_sigkill_in_the_middle_of_a_flush_then_restart_totals_stay_exact(tmp_path):
    state = tmp_path / "state"
    ledger = Ledger()

    async def fill() -> int:
        async with edge(tmp_path / "fill", state=state) as e:
            for i in range(0, CLIENTS, 100):
                await asyncio.gather(*(decide(e.env, ledger, f"client-{j:04d}", RULES, cost=1 + j % 3)
                                       for j in range(i, i + 100) for _ in range(1 + j % 4)))

            async def done():
                return await pushes_done(e)
            while not await done():
                await asyncio.sleep(0.02)
            return await outbox_depth(e.env)

    waiting = asyncio.run(fill())
    assert waiting == len(ledger.keys) > 1000
    # Small batches make the flush long enough to be caught in the middle.
    config = snapshot_config(tmp_path / "run", vars={"FLUSH_BATCH_ROWS": "5", "FLUSH_LEASE_MS": "400"})
    proc = EdgeProcess(config, state).start()
    try:
        flusher = threading.Thread(target=trigger, args=(proc.url,), daemon=True)
        flusher.start()
        deadline = time.monotonic() + 30
        while usage_rows(state)[0] < waiting // 4:  # well into the flush
            assert time.monotonic() < deadline, "the flush never started writing"
            time.sleep(0.002)
        proc.kill()
        written_at_kill, _ = usage_rows(state)
        assert 0 < written_at_kill < waiting, f"not killed mid-flush ({written_at_kill}/{waiting})"
        print(f"killed with {written_at_kill}/{waiting} rows written")
    finally:
        proc.kill()
    proc = EdgeProcess(config, state).start()
    try:
        deadline = time.monotonic() + 30
        while outbox_entries(proc.url) > 0:  # leases of the killed run expire, then they flush
            assert time.monotonic() < deadline, "the outbox never drained after the restart"
            trigger(proc.url)
    finally:
        proc.stop()
    rows, totals = usage_rows(state)
    assert rows == waiting
    assert totals == ledger.expected()
