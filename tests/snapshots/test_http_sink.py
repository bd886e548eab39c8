"""The HTTP sink against a real HTTP receiver on a loopback port: signature, idempotency
key, retries on 5xx/429, no retry on other 4xx, nothing acknowledged unless confirmed."""
from __future__ import annotations

import asyncio
import json
import socket
from types import SimpleNamespace

import pytest

from durable_objects.outbox import SnapshotOutbox
from src.tollgate.snapshots import UsageRecord, encode_rows, shard_for, shard_name
from tests.snapshots.sink_receiver import Receiver
from tests.state.fakes import FakeNamespace
from worker.scheduled import flush
from worker.stores.base import StoreError
from worker.stores.http_sink import HttpSink

SECRET = "sink-secret-for-tests"


def make_env(url, secret=SECRET, **vars):
    env = SimpleNamespace(SNAPSHOT_STORE="http", SNAPSHOT_SINK_URL=url, SNAPSHOT_SINK_SECRET=secret,
                          SNAPSHOT_SINK_BACKOFF_MS="1", OUTBOX_SHARDS="4", **{k: str(v) for k, v in vars.items()})
    env.OUTBOX = FakeNamespace(SnapshotOutbox, env)
    return env


def recs(n, version=1):
    return [UsageRecord(f"c{i:04d}", "daily", 0, 2, 5, 1, 0, version) for i in range(n)]


async def push(env, records):
    for r in records:
        await env.OUTBOX.getByName(shard_name(shard_for(r.client, 4))).put(encode_rows([r]))


async def depth(env):
    found = 0
    for name, obj in env.OUTBOX.objects.items():
        if name.startswith("shard"):
            found += json.loads(await obj.stats())["depth"]
    return found


async def close_fetch_sessions() -> None:
    """The runtime's workers.fetch keeps one client session per loop; LocalEdge.stop closes it."""
    from workers.fetch import close_sessions
    await close_sessions()


def with_receiver(test):
    async def body():
        rx = Receiver(SECRET.encode())
        url = await rx.start()
        try:
            await test(rx, url)
        finally:
            await rx.stop()
            await close_fetch_sessions()
    return lambda: asyncio.run(body())


@with_receiver
async def _flush_through_sink(rx, url):
    env = make_env(url)
    await push(env, recs(250))
    rep = await flush(env)
    assert rep.complete and rep.rows_written == 250 and await depth(env) == 0
    assert rx.totals() == {"daily": (500, 1250, 250, 0)}
    assert all(r["status"] == 200 for r in rx.requests) and rep.store_calls == len(rx.requests) == 1


def test_flush_delivers_signed_ndjson_batches():
    _flush_through_sink()


@with_receiver
async def _retries(rx, url):
    env = make_env(url)
    await push(env, recs(30))
    rx.fail_next = [503, 500, 429]
    rep = await flush(env)
    assert rep.complete and await depth(env) == 0
    assert [r["status"] for r in rx.requests] == [503, 500, 429, 200]
    assert len({r["key"] for r in rx.requests}) == 1  # the same batch, the same Idempotency-Key
    assert rep.store_calls == 4
    assert rx.totals() == {"daily": (60, 150, 30, 0)}


def test_5xx_and_429_are_retried_with_the_same_idempotency_key():
    _retries()


@with_receiver
async def _gives_up(rx, url):
    env = make_env(url, SNAPSHOT_SINK_ATTEMPTS=3)
    await push(env, recs(10))
    rx.fail_next = [503] * 3
    rep = await flush(env)
    assert rep.stopped == "store" and rep.store_errors == 1 and len(rx.requests) == 3
    assert await depth(env) == 10 and rx.rows == {}  # nothing acknowledged, nothing lost
    rep = await flush(env)  # the sink is back
    assert rep.complete and await depth(env) == 0 and rx.totals() == {"daily": (20, 50, 10, 0)}


def test_bounded_retries_then_the_next_run_delivers():
    _gives_up()


@with_receiver
async def _bad_signature(rx, url):
    env = make_env(url, secret="not-the-receivers-secret")
    await push(env, recs(5))
    rep = await flush(env)
    assert rep.stopped == "store" and [r["status"] for r in rx.requests] == [401]  # 4xx: no retry
    assert await depth(env) == 5 and rx.rows == {}


def test_receiver_rejects_a_wrong_signature_and_the_sink_does_not_retry_4xx():
    _bad_signature()


def test_network_error_is_retried_then_reported():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once we leave: connection refused
    sink = HttpSink(f"http://127.0.0.1:{port}/usage", SECRET.encode(), attempts=3, backoff_ms=1)
    async def write():
        try:
            return await sink.write(recs(2), 0)
        finally:
            await close_fetch_sessions()

    with pytest.raises(StoreError) as err:
        asyncio.run(write())
    assert not err.value.permanent and err.value.subrequests == 3


def test_sink_config_errors_name_the_variable():
    with pytest.raises(ValueError, match="SNAPSHOT_SINK_SECRET"):
        HttpSink.from_env(SimpleNamespace(SNAPSHOT_SINK_URL="http://x/"))
    with pytest.raises(ValueError, match="SNAPSHOT_SINK_URL"):
        HttpSink.from_env(SimpleNamespace(SNAPSHOT_SINK_URL="ftp://x/", SNAPSHOT_SINK_SECRET="s"))


@with_receiver
async def _deadline(rx, url):
    import time
    sink = HttpSink(url, SECRET.encode(), attempts=10, backoff_ms=400)
    rx.fail_next = [503] * 10
    started = time.monotonic()
    with pytest.raises(StoreError, match="out of time"):
        await sink.write(recs(3), 0, deadline_ms=int(time.time() * 1000) + 1000)
    assert time.monotonic() - started < 1.5 and len(rx.requests) == 2  # 400 ms, then 800 ms would pass it


def test_retries_stop_at_the_flush_deadline():
    _deadline()
