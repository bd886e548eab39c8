"""/__tollgate/metrics rendering: auth, Prometheus text format, exact durable numbers."""
from __future__ import annotations

import asyncio
import re
from types import SimpleNamespace

from durable_objects.outbox import SnapshotOutbox
from src.tollgate.snapshots import UsageRecord, encode_rows
from tests.snapshots.fake_d1 import FakeD1
from tests.state.fakes import FakeNamespace
from worker.metrics import escape_label, record_bucket_error, render
from worker.scheduled import flush

SAMPLE = re.compile(r'^([a-z_:]+)(\{([a-z_]+="(\\.|[^"\\])*",?)*\})? (-?[0-9.e+]+)$')


def make_env(**vars):
    env = SimpleNamespace(OUTBOX_SHARDS="2", METRICS_TOKEN="m-token", **vars)
    env.OUTBOX = FakeNamespace(SnapshotOutbox, env)
    env.USAGE_DB = FakeD1()
    return env


def scrape(env, auth="Bearer m-token"):
    return asyncio.run(render(env, auth))


def parse(body: bytes) -> dict[str, float]:
    values, typed = {}, set()
    for line in body.decode().splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
            continue
        if line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"not a valid sample line: {line!r}"
        assert m.group(1) in typed, f"{m.group(1)} has no TYPE line before it"
        values[line.rsplit(" ", 1)[0]] = float(m.group(5))
    return values


def test_metrics_need_the_token():
    env = make_env()
    assert scrape(env, None)[0] == 401
    assert scrape(env, "Bearer wrong")[0] == 401
    status, headers, _ = scrape(env)
    assert status == 200 and ("Content-Type", "text/plain; version=0.0.4; charset=utf-8") in headers
    closed = SimpleNamespace(OUTBOX=env.OUTBOX)
    assert asyncio.run(render(closed, "Bearer anything"))[0] == 403
    admin_only = make_env()
    del admin_only.METRICS_TOKEN
    admin_only.ADMIN_TOKEN = "a-token"
    assert asyncio.run(render(admin_only, "Bearer a-token"))[0] == 200


def test_decisions_come_exactly_from_the_store_after_a_flush():
    env = make_env()
    rows = [UsageRecord(f"c{i}", 'we"ird\\rule', 0, 3, 6, 1, 2, 1) for i in range(40)]
    asyncio.run(env.OUTBOX.getByName("shard-0").put(encode_rows(rows[:20])))
    asyncio.run(env.OUTBOX.getByName("shard-1").put(encode_rows(rows[20:])))
    before = parse(scrape(env)[2])
    assert before['tollgate_outbox_entries{shard="shard-0"}'] == 20
    assert before["tollgate_flush_lag_seconds"] >= 0
    assert not any(k.startswith("tollgate_decisions_total") for k in before)  # nothing flushed yet
    asyncio.run(flush(env))
    after = parse(scrape(env)[2])
    label = escape_label('we"ird\\rule')
    assert after[f'tollgate_decisions_total{{rule="{label}",result="allowed"}}'] == 120
    assert after[f'tollgate_decisions_total{{rule="{label}",result="denied"}}'] == 40
    assert after[f'tollgate_decisions_total{{rule="{label}",result="shadow_denied"}}'] == 80
    assert after[f'tollgate_admitted_cost_total{{rule="{label}"}}'] == 240
    assert after['tollgate_outbox_entries{shard="shard-0"}'] == 0
    assert after["tollgate_flush_lag_seconds"] == 0
    assert after['tollgate_flushed_rows_total{store="d1"}'] == 40
    assert "tollgate_last_flush_success_timestamp_seconds" in after


def test_bucket_errors_are_counted_durably_across_worker_instances():
    env = make_env()
    other_isolate = SimpleNamespace(OUTBOX_SHARDS="2", OUTBOX=env.OUTBOX)  # same objects, new Worker
    waits = []
    ctx = SimpleNamespace(waitUntil=waits.append)

    async def errors():
        for _ in range(3):
            await record_bucket_error(env, None, "open")
        await record_bucket_error(other_isolate, ctx, "closed")
        await asyncio.gather(*waits)

    asyncio.run(errors())
    values = parse(scrape(env)[2])
    assert values['tollgate_bucket_errors_total{resolution="open"}'] == 3
    assert values['tollgate_bucket_errors_total{resolution="closed"}'] == 1


def test_store_errors_are_exported():
    env = make_env()
    asyncio.run(env.OUTBOX.getByName("shard-1").put(encode_rows([UsageRecord("c", "r", 0, 1, 1, 0, 0, 1)])))
    env.USAGE_DB.down = True
    asyncio.run(flush(env))
    asyncio.run(flush(env))
    values = parse(scrape(env)[2])
    assert values['tollgate_store_write_errors_total{store="d1"}'] == 2
    assert values["tollgate_store_up"] == 0


def test_escape_label():
    assert escape_label('a"b\\c\nd') == 'a\\"b\\\\c\\nd'


def test_exposition_passes_promtool_check_metrics():
    import shutil
    import subprocess

    import pytest
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("PROMTOOL MISSING: exposition format NOT linted (install Debian package prometheus)")
    env = make_env()
    asyncio.run(env.OUTBOX.getByName("shard-0").put(encode_rows([UsageRecord("c", "r", 0, 1, 1, 1, 0, 1)])))
    asyncio.run(flush(env))
    asyncio.run(record_bucket_error(env, None, "closed"))
    body = scrape(env)[2]
    out = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, timeout=30)
    assert out.returncode == 0, (out.stdout + out.stderr).decode() + body.decode()
