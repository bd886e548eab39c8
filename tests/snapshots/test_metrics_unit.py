"""/__tollgate/metrics rendering: auth, Prometheus text format, exact durable numbers."""
from __future__ import annotations

import asyncio
import re
import time
from types import SimpleNamespace

from durable_objects.outbox import SnapshotOutbox
from src.tollgate.snapshots import UsageRecord, encode_rows
from src.tollgate.usage import period_start
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


def test_decisions_are_counted_when_snapshots_arrive_and_the_store_agrees_after_a_flush():
    env = make_env()
    rows = [UsageRecord(f"c{i}", 'we"ird\\rule', 0, 3, 6, 1, 2, 1) for i in range(40)]
    asyncio.run(env.OUTBOX.getByName("shard-0").put(encode_rows(rows[:20])))
    asyncio.run(env.OUTBOX.getByName("shard-1").put(encode_rows(rows[20:])))
    label = escape_label('we"ird\\rule')
    expected = {f'tollgate_decisions_total{{rule="{label}",result="allowed"}}': 120,
                f'tollgate_decisions_total{{rule="{label}",result="denied"}}': 40,
                f'tollgate_decisions_total{{rule="{label}",result="shadow_denied"}}': 80,
                f'tollgate_admitted_cost_total{{rule="{label}"}}': 240}
    before = parse(scrape(env)[2])
    assert before['tollgate_outbox_entries{shard="shard-0"}'] == 20
    assert before["tollgate_flush_lag_seconds"] >= 0
    assert {k: before[k] for k in expected} == expected        # counted before any flush
    assert not any(k.startswith("tollgate_store_decisions_total") for k in before)  # the store: not yet
    asyncio.run(flush(env))
    after = parse(scrape(env)[2])
    assert {k: after[k] for k in expected} == expected         # the flush does not count again
    assert after[f'tollgate_store_decisions_total{{rule="{label}",result="denied"}}'] == 40
    assert after['tollgate_outbox_entries{shard="shard-0"}'] == 0
    assert after["tollgate_flush_lag_seconds"] == 0
    assert after['tollgate_flushed_rows_total{store="d1"}'] == 40
    assert "tollgate_last_flush_success_timestamp_seconds" in after


def test_totals_count_what_is_new_in_each_snapshot_once():
    env = make_env()
    shard = env.OUTBOX.getByName("shard-0")
    HOUR = period_start(int(time.time() * 1000))   # a recent hour: the shard remembers it

    def put(*recs):
        asyncio.run(shard.put(encode_rows(list(recs))))

    def denied():
        return parse(scrape(env)[2]).get('tollgate_decisions_total{rule="r",result="denied"}')
    put(UsageRecord("c", "r", HOUR, 5, 5, 2, 0, 3))
    put(UsageRecord("c", "r", HOUR, 5, 5, 2, 0, 3))       # re-sent after a lost reply
    assert denied() == 2
    asyncio.run(flush(env))                             # flushed: the entry leaves the outbox
    put(UsageRecord("c", "r", HOUR, 5, 5, 2, 0, 2))       # an older snapshot arriving late
    assert denied() == 2
    put(UsageRecord("c", "r", HOUR, 9, 9, 7, 0, 6))       # the same hour, later: only the difference
    put(UsageRecord("c", "r", HOUR + 3_600_000, 1, 1, 1, 0, 7))   # the next hour starts from zero
    assert denied() == 2 + 5 + 1
    assert parse(scrape(env)[2])['tollgate_decisions_total{rule="r",result="allowed"}'] == 9 + 1


def test_totals_exist_with_the_http_sink_and_vanish_rather_than_shrink_when_a_shard_is_down():
    env = make_env(SNAPSHOT_STORE="http", SNAPSHOT_SINK_URL="http://127.0.0.1:9/never",
                   SNAPSHOT_SINK_SECRET="s")
    del env.USAGE_DB
    asyncio.run(env.OUTBOX.getByName("shard-0").put(encode_rows([UsageRecord("a", "r", 0, 4, 4, 1, 0, 1)])))
    asyncio.run(env.OUTBOX.getByName("shard-1").put(encode_rows([UsageRecord("b", "r", 0, 6, 6, 2, 0, 1)])))
    values = parse(scrape(env)[2])
    assert values['tollgate_decisions_total{rule="r",result="denied"}'] == 3
    assert not any(k.startswith("tollgate_store_decisions_total") for k in values)   # write-only store
    real_get = env.OUTBOX.getByName

    def shard_1_down(name):
        if name == "shard-1":
            raise ConnectionError("shard-1 unreachable")
        return real_get(name)
    env.OUTBOX.getByName = shard_1_down
    values = parse(scrape(env)[2])
    # a sum over one shard would look like a counter reset, and rate() like a spike
    assert not any(k.startswith("tollgate_decisions_total") for k in values)
    assert values['tollgate_outbox_up{shard="shard-1"}'] == 0


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
