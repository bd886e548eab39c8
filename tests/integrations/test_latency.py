"""Latency histograms end to end on the local runtime: requests through the
gateway, per-isolate batches to the outbox shards, /__tollgate/metrics as
Prometheus histograms (decision round trip, origin time, added time)."""
from __future__ import annotations

import re
import time

from durable_objects.outbox import LATENCY_KINDS, LATENCY_SLOTS
from tests.gateway.support import SECRETS, Origin, write_config
from tests.integrations.conftest import fetch
from worker import latency

RULES = {"identity": ["header:x-api-key"],
         "rules": [{"name": "per-client", "limit": "100/second", "burst": 100, "match": {"paths": ["/v1/*"]}}]}


def scrape(url: str) -> str:
    got = fetch(url, "GET", "/__tollgate/metrics", {"Authorization": f"Bearer {SECRETS['ADMIN_TOKEN']}"})
    assert got.status == 200, got.body
    return got.body.decode()


def samples(text: str, name: str) -> dict[str, float]:
    return {m.group(1): float(m.group(2)) for m in re.finditer(rf"^{name}(\{{[^}}]*\}}) (\S+)$", text, re.M)}


def test_the_recorder_and_the_outbox_agree_on_the_layout():
    assert LATENCY_KINDS == latency.KINDS and LATENCY_SLOTS == len(latency.BOUNDS_MS) + 2
    assert [latency.bucket_index(ms) for ms in (0.2, 1, 1.5, 10000, 10001)] == [0, 0, 1, 12, 13]


def test_histograms_reach_the_metrics(tmp_path, edge_process, runtime):
    config = write_config(tmp_path / "cfg", RULES, {"LATENCY_BATCH_MS": "0", "OUTBOX_SHARDS": "2"})
    with Origin() as origin:
        edge = edge_process(config, tmp_path / "state", origin=origin.url)
        for _ in range(3):
            assert fetch(edge.url, "GET", "/slow/120", {"X-Api-Key": "alice"}).status == 201   # no rule
            assert fetch(edge.url, "GET", "/v1/items", {"X-Api-Key": "alice"}).status == 201
        deadline = time.monotonic() + 10
        while True:                           # batches are sent off the request path: poll
            text = scrape(edge.url)
            counts = samples(text, "tollgate_origin_duration_seconds_count")
            if sum(counts.values()) >= 6 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert "# TYPE tollgate_decision_duration_seconds histogram" in text
    assert counts == {'{rules="none"}': 3.0, '{rules="per-client"}': 3.0}
    origin_buckets = samples(text, "tollgate_origin_duration_seconds_bucket")
    # The slow origin's 120 ms land above 0.1 s; +Inf holds everything.
    assert origin_buckets['{rules="none",le="0.1"}'] == 0 and origin_buckets['{rules="none",le="0.25"}'] == 3
    assert origin_buckets['{rules="none",le="+Inf"}'] == 3
    assert samples(text, "tollgate_origin_duration_seconds_sum")['{rules="none"}'] >= 0.36
    assert samples(text, "tollgate_decision_duration_seconds_count") == {'{rules="per-client"}': 3.0}
    added = samples(text, "tollgate_added_duration_seconds_count")
    assert added == {'{rules="none"}': 3.0, '{rules="per-client"}': 3.0}
