"""scripts/reconcile against a running gateway (local runtime, real HTTP): drift between
live buckets and the store, a bucket that lost its storage, and restoring it."""
from __future__ import annotations

import asyncio
import hashlib
import json
import sys
from pathlib import Path

import aiohttp

from tests.snapshots.edge_support import SECRETS, edge, pushes_done, wait_for

ROOT = Path(__file__).resolve().parents[2]
CRON = "*/5 * * * *"


async def reconcile(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "scripts" / "reconcile.py"), *args, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    return proc.returncode, out.decode()


async def allow(url: str, key: str, n: int) -> list[int]:
    async with aiohttp.ClientSession() as s:
        statuses = []
        for _ in range(n):
            async with s.get(f"{url}/__tollgate/allow", headers={"x-api-key": key}) as r:
                statuses.append(r.status)
        return statuses


async def settle_and_flush(e) -> None:
    async def done():
        return await pushes_done(e)
    await wait_for(done, what="bucket alarms")
    await e.scheduled(CRON)


def test_drift_lost_bucket_and_restore_through_the_admin_api(tmp_path):
    state = tmp_path / "state"
    token = SECRETS["ADMIN_TOKEN"]

    async def main():
        async with edge(tmp_path, state=state) as e:
            assert await allow(e.url, "alice", 4) == [200] * 4
            await settle_and_flush(e)
            args = ("--url", e.url, "--token", token, "--identity", "key:alice", "--state", str(state))
            code, out = await reconcile("drift", *args)
            assert code == 0 and "in sync" in out and "STORE AHEAD" not in out, out
            await allow(e.url, "alice", 1)
            code, out = await reconcile("drift", *args)
            assert code == 0 and "pending flush" in out, out  # bucket ahead of the store until the cron
            await settle_and_flush(e)
            admin = aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"})
            async with admin, admin.get(f"{e.url}/__tollgate/admin/clients/key:alice") as r:
                client = (await r.json())["client"]
        # The bucket loses its storage (e.g. a bad migration); the store still has its usage.
        object_id = hashlib.sha256(f"ClientBucket\x00{client}".encode()).hexdigest()
        files = list((state / "do" / "ClientBucket").glob(f"{object_id}*"))
        assert files
        for f in files:
            f.unlink()
        async with edge(tmp_path, state=state) as e:
            args = ("--url", e.url, "--token", token, "--identity", "key:alice", "--state", str(state))
            code, out = await reconcile("drift", *args)
            assert code == 1 and "STORE AHEAD" in out, out
            code, out = await reconcile("restore", *args)
            assert code == 0 and json.loads(out)["restored_rules"] >= 1, out
            code, out = await reconcile("drift", *args)
            assert code == 0 and "in sync" in out, out
            code, out = await reconcile("restore", *args)
            assert code == 1 and "409" in out  # only an empty bucket is refilled
            assert await allow(e.url, "alice", 1) == [200]
            await settle_and_flush(e)
            rows = e.d1("USAGE_DB").rows("SELECT rule, allowed FROM usage WHERE client = ?", client)
        assert rows and all(r["allowed"] == 6 for r in rows)  # 5 before the loss + 1 after: counting went on

    asyncio.run(main())
