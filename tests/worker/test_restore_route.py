"""worker/restore_route.py: POST .../restore answers every outcome with its own status."""
from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

from src.localedge.sdk import install

install()   # `import workers` finds the local runtime's SDK, as the runtime provides it

from durable_objects.bucket import ClientBucket  # noqa: E402
from src.tollgate.snapshots import UsageRecord, encode_ndjson  # noqa: E402
from src.tollgate.usage import ACCOUNTING_PERIOD_MS  # noqa: E402
from tests.snapshots.fake_d1 import FakeD1  # noqa: E402
from tests.state.fakes import FakeNamespace  # noqa: E402
from worker.restore_route import restore_client  # noqa: E402
from worker.stores.d1 import D1Store  # noqa: E402

HOUR = 1_800_000_000_000 // ACCOUNTING_PERIOD_MS * ACCOUNTING_PERIOD_MS


def env_with(db=None):
    env = SimpleNamespace()
    if db is not None:
        env.USAGE_DB = db
    env.BUCKETS = FakeNamespace(ClientBucket, env)
    return env


def call(env, body, client="client-a"):
    status, headers, raw = asyncio.run(restore_client(env, client, body))
    return status, dict(headers), json.loads(raw)


def test_records_in_the_body_refill_the_bucket_then_a_second_restore_is_a_conflict():
    env = env_with()
    body = encode_ndjson([UsageRecord("client-a", "daily", HOUR, 3, 3, 0, 0, 7)])
    status, headers, out = call(env, body)
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert out == {"ok": True, "client": "client-a", "restored_rules": 1}
    status, headers, out = call(env, body)
    assert status == 409 and headers["Content-Type"] == "application/problem+json"
    assert out["title"] == "Bucket not empty" and "not empty" in out["detail"]


def test_an_empty_body_reads_the_clients_rows_from_d1():
    db = FakeD1()
    asyncio.run(D1Store(db).write([UsageRecord("client-a", "daily", HOUR, 2, 2, 0, 0, 4)], 1))
    env = env_with(db)
    assert call(env, b"")[0] == 200
    row = env.BUCKETS.getByName("client-a").sql.one("SELECT allowed, version FROM rule_state")
    assert (row["allowed"], row["version"]) == (2, 4)


def test_bad_bodies_are_400_problems_naming_what_is_wrong():
    env = env_with()
    status, _, out = call(env, b"{not json\n")
    assert status == 400 and "expected NDJSON usage records" in out["detail"]
    other = encode_ndjson([UsageRecord("client-b", "daily", HOUR, 1, 1, 0, 0, 1)])
    status, _, out = call(env, other)
    assert status == 400 and "other clients: client-b" in out["detail"]
    status, _, out = call(env, "")
    assert status == 400 and "USAGE_DB" in out["detail"]
    assert env.BUCKETS.objects == {}                      # no bucket was touched


def test_an_unreachable_bucket_is_a_503_problem():
    env = env_with()
    env.BUCKETS.down = True
    status, headers, out = call(env, encode_ndjson([UsageRecord("client-a", "daily", HOUR, 1, 1, 0, 0, 1)]))
    assert status == 503 and out["status"] == 503 and headers["Cache-Control"] == "no-store"
