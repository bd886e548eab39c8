"""The dashboard's data and HTML without a runtime: sources missing, the HTTP store, escaping,
labels instead of keys, latency beyond the last bucket (worker/dashboard_data.py, dashboard_page.py)."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from durable_objects.outbox import SnapshotOutbox
from src.tollgate import clock
from src.tollgate.config import parse_config
from src.tollgate.identity import Identity, client_key
from src.tollgate.snapshots import UsageRecord, encode_rows, shard_for, shard_name
from src.tollgate.usage import period_start
from tests.snapshots.fake_d1 import FakeD1
from tests.state.fakes import FakeNamespace
from worker.dashboard_data import gather
from worker.dashboard_page import dashboard_page, login_page
from worker.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SECRET = b"unit-secret"
NOW = 1_800_000_000_000
CONFIG = parse_config({"rules": [{"name": "burst", "limit": "5/minute", "burst": 10},
                                 {"name": "daily", "limit": "20 per 2 days", "algorithm": "fixed_window"}],
                       "overrides": {"key:sk-secret-1": {"label": "<Acme & co>"}}})
SETTINGS = Settings(CONFIG, None, 30.0, SECRET, None, b"admin")


class _Namespace(FakeNamespace):
    """One shard can be made unreachable while the others answer."""
    missing: set = set()

    def getByName(self, name):
        obj = super().getByName(name)
        if name in self.missing:
            class Down:
                def __getattr__(self, _):
                    async def fail(*a):
                        raise RuntimeError("unreachable")
                    return fail
            return Down()
        return obj


def env_with(**vars) -> SimpleNamespace:
    env = SimpleNamespace(OUTBOX_SHARDS="2", **vars)
    env.OUTBOX = _Namespace(SnapshotOutbox, env)
    env.OUTBOX.missing = set()
    env.USAGE_DB = FakeD1()
    return env


def put(env, identity: str, rule: str, allowed: int, denied: int, hours_ago: int = 0) -> str:
    client = client_key(SECRET, Identity.parse(identity))
    rec = UsageRecord(client, rule, period_start(NOW) - hours_ago * 3_600_000, allowed, allowed, denied, 0, 1)
    asyncio.run(env.OUTBOX.getByName(shard_name(shard_for(client, 2))).put(encode_rows([rec])))
    return client


def view(env) -> dict:
    with clock.use(lambda: NOW):
        return asyncio.run(gather(env, SETTINGS))


def test_counts_in_the_window_labels_not_keys_and_escaped_html():
    env = env_with()
    with clock.use(lambda: NOW):
        heavy = put(env, "key:sk-secret-1", "burst", 3, 9)
        put(env, "key:sk-other-2", "burst", 2, 4, hours_ago=23)
        put(env, "key:sk-other-2", "burst", 50, 50, hours_ago=24)        # outside the 24 hours
        put(env, "key:sk-gone", "renamed", 1, 1)
    data = view(env)
    rules = {r["rule"]: r for r in data["rules"]}
    assert rules["burst"]["outbox"] == {"allowed": 5, "admitted": 5, "denied": 13, "shadow_denied": 0}
    assert rules["burst"]["limit"] == "5/minute, burst 10" and rules["daily"]["limit"] == "20 per 172800 seconds"
    assert rules["renamed"]["configured"] is False
    assert rules["burst"]["store"] == {"allowed": 0, "admitted": 0, "denied": 0, "shadow_denied": 0}  # not flushed
    assert data["denied_clients"][0] == {"client": heavy[:12], "label": "<Acme & co>", "denied": 9,
                                         "by_rule": {"burst": 9}}
    assert data["outbox"]["depth"] == 4 and data["outbox"]["last_flush_ms"] is None
    html = dashboard_page(data)
    assert "&lt;Acme &amp; co&gt;" in html and "<Acme" not in html
    assert "sk-secret" not in html and "sk-other" not in html and heavy not in html     # prefix only
    assert "not configured now" in html and "never" in html
    assert "<script" not in html and "<script" not in login_page("x") and 'type="password"' in login_page()


def test_a_missing_shard_leaves_the_outbox_columns_out_and_says_so():
    env = env_with()
    with clock.use(lambda: NOW):
        put(env, "key:a", "burst", 1, 1)
    env.OUTBOX.missing = {"shard-1"}
    data = view(env)
    assert data["shards_up"] == 1 and all(r["outbox"] is None for r in data["rules"])
    html = dashboard_page(data)
    assert "1 of 2 outbox shards answered" in html and 'id="rule-burst-outbox-denied">–<' in html


def test_the_http_store_is_write_only_and_an_unreadable_d1_is_named():
    env = env_with(SNAPSHOT_STORE="http", SNAPSHOT_SINK_URL="http://127.0.0.1:9/x", SNAPSHOT_SINK_SECRET="s")
    data = view(env)
    assert data["store"] == {"kind": "http", "readable": False, "error": None}
    assert "write-only" in dashboard_page(data)
    broken = env_with()
    del broken.USAGE_DB
    data = view(broken)
    assert data["store"]["readable"] is False and "USAGE_DB" in data["store"]["error"]
    assert "could not be read" in dashboard_page(data)


def test_latency_percentiles_and_a_p99_beyond_the_last_bucket():
    env = env_with()
    slots = [0] * 15
    slots[2], slots[13], slots[14] = 98, 2, 98 * 4000 + 2 * 20_000_000      # 98 in (2, 5] ms, 2 above 10 s
    asyncio.run(env.OUTBOX.getByName("shard-0").add_latency(json.dumps({"decision": {"burst": slots}})))
    [row] = view(env)["latency"]
    assert row["count"] == 100 and 2 < row["p50_ms"] <= 5 and row["p99_ms"] == 10_000 and row["p99_over"]
    assert not row["p50_over"]
    assert "&gt;&#8239;10 s" in dashboard_page(view(env))



def test_the_route_prefix_is_the_pages_and_the_gateway_does_not_load_the_page_modules():
    from worker.dashboard_page import PAGE_PATH
    from worker.routes.dashboard import PREFIX
    assert PREFIX == PAGE_PATH
    code = ("import sys, worker.gateway; "
            "print('worker.dashboard_page' in sys.modules, 'worker.dashboard_data' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.split() == ["False", "False"], out.stderr


def test_a_client_counted_by_two_shards_is_one_row():
    env = env_with()
    client = client_key(SECRET, Identity.parse("key:moved"))
    with clock.use(lambda: NOW):
        for shard, hour in (("shard-0", 0), ("shard-1", 1)):      # OUTBOX_SHARDS changed in between
            rec = UsageRecord(client, "burst", period_start(NOW) - hour * 3_600_000, 1, 1, 3, 0, 1)
            asyncio.run(env.OUTBOX.getByName(shard).put(encode_rows([rec])))
    assert view(env)["denied_clients"] == [{"client": client[:12], "label": None, "denied": 6, "by_rule": {"burst": 6}}]


def test_percentiles_per_hour_over_the_window():
    env = env_with()
    box = env.OUTBOX.getByName("shard-1")
    for hours_ago, bucket in ((30, 10), (5, 9), (0, 2)):          # 30 h ago: outside the window
        slots = [0] * 15
        slots[bucket], slots[-1] = 10, 10_000
        with clock.use(lambda: NOW - hours_ago * 3_600_000):
            asyncio.run(box.add_latency(json.dumps({"decision": {"burst": slots}})))
    data = view(env)
    [series] = data["latency_hours"]
    hours = series["hours"]
    assert len(hours) == 24 and hours[-1]["period_start_ms"] == period_start(NOW)
    assert [h["count"] for h in hours if h["count"]] == [10, 10]
    assert 500 < hours[-6]["p99_ms"] <= 1000 and 2 < hours[-1]["p99_ms"] <= 5   # 5 hours ago slower than now
    html = dashboard_page(data)
    assert f'id="hour-decision-burst-{period_start(NOW)}" style="height:0%"' in html    # linear: 5 ms of 1 s
    assert f'id="hour-decision-burst-{period_start(NOW) - 5 * 3_600_000}" style="height:100%"' in html
    assert "p99 per hour, last 24 hours" in html
