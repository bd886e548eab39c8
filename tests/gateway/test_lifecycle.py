"""Idle buckets delete themselves, seen from outside (both runtimes, real workerd included):
the admin API shows the cleanup scheduled, then an empty bucket, then a fresh one.

A bucket that made decisions waits for the end of its accounting hour (a fresh bucket in the
same hour would collide with the store's row), so the deletion itself is driven here by a
restore of old usage: rows whose hours closed long ago, nothing held by the outbox, every
rule full. Polled with a bound, never slept through.
"""
from __future__ import annotations

import asyncio
import json
import time

from src.tollgate.snapshots import UsageRecord, encode_ndjson
from src.tollgate.usage import ACCOUNTING_PERIOD_MS
from tests.gateway.support import SECRETS, call, run_scenario

TOLLGATE = {"identity": ["header:x-api-key"], "rules": [{"name": "burst", "limit": "5/second", "burst": 5}]}
VARS = {"SNAPSHOT_DELAY_MS": "50", "OUTBOX_SHARDS": "2"}
ADMIN = {"Authorization": f"Bearer {SECRETS['ADMIN_TOKEN']}"}


async def admin_view(http, edge, who):
    status, _, body = await call(http, "GET", f"{edge.url}/__tollgate/admin/clients/{who}", headers=ADMIN)
    assert status == 200, body
    return json.loads(body)


async def poll(fetch, ok, what, timeout_s=30.0):
    deadline = time.monotonic() + timeout_s
    while True:
        value = await fetch()
        if ok(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: {value}")
        await asyncio.sleep(0.05)


def test_an_idle_bucket_schedules_its_cleanup_then_deletes_itself_and_a_fresh_one_follows(tmp_path):
    async def scenario(edge, origin, http):
        for _ in range(3):
            assert (await call(http, "GET", f"{edge.url}/v1/x", headers={"X-Api-Key": "alice"}))[0] == 201
        view = await poll(lambda: admin_view(http, edge, "alice"),
                          lambda v: v["unsent"] == 0 and "cleanup_at_ms" in v, "alice's push and cleanup alarm")
        burst = view["rules"]["burst"]      # the end of the hour it counted in: the burst is long full
        assert view["cleanup_at_ms"] == burst["period_start_ms"] + ACCOUNTING_PERIOD_MS and burst["allowed"] == 3

        client = (await admin_view(http, edge, "bob"))["client"]
        old = view["now_ms"] - view["now_ms"] % ACCOUNTING_PERIOD_MS - 40 * 86_400_000
        body = encode_ndjson([UsageRecord(client, "burst", old, 7, 7, 1, 0, 9)])
        status, _, answer = await call(http, "POST", f"{edge.url}/__tollgate/admin/clients/bob/restore",
                                       headers=ADMIN, data=body)
        assert status == 200 and json.loads(answer)["restored_rules"] == 1, answer
        await poll(lambda: admin_view(http, edge, "bob"), lambda v: v["rules"]["burst"]["state"] is None and "allowed" not in v["rules"]["burst"],
                   "bob's bucket to delete itself")
        status, headers, _ = await call(http, "GET", f"{edge.url}/v1/x", headers={"X-Api-Key": "bob"})
        assert status == 201 and '"burst";r=4' in headers["RateLimit"]    # a fresh bucket, a full burst
        fresh = (await admin_view(http, edge, "bob"))["rules"]["burst"]
        assert (fresh["allowed"], fresh["version"]) == (1, 1)
    run_scenario(tmp_path, TOLLGATE, scenario, vars=VARS)
