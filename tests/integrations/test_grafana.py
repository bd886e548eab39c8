"""The shipped Grafana dashboard (integrations/grafana/tollgate-dashboard.json) is
import-ready JSON, queries only metrics the Worker exports, shows every one of
them, and each query is valid PromQL for a real Prometheus (promtool)."""
from __future__ import annotations

import subprocess

import yaml

from tests.integrations.dashboard import dashboard, exported_metrics, metric_names, queries
from tests.integrations.programs import need_program


def test_the_exported_names_come_from_the_worker():
    exported = exported_metrics()
    assert {"tollgate_decisions_total", "tollgate_flush_lag_seconds", "tollgate_outbox_entries"} <= exported


def test_every_query_names_exported_metrics_and_every_metric_is_shown():
    exported = exported_metrics()
    used: set[str] = set()
    for title, expr in queries():
        names = metric_names(expr)
        assert names, f"panel {title!r} queries no Tollgate metric: {expr}"
        assert names <= exported, f"panel {title!r} uses metrics nobody exports: {sorted(names - exported)}"
        used |= names
    assert exported <= used, f"exported but on no panel: {sorted(exported - used)}"


def test_it_is_import_ready():
    doc = dashboard()
    inputs = {i["name"]: i for i in doc["__inputs"]}
    assert inputs["DS_PROMETHEUS"]["pluginId"] == "prometheus"
    assert doc["uid"] and doc["title"] and doc["id"] is None and doc["schemaVersion"] >= 36
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in doc["panels"]:
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}"
        assert all(t["datasource"]["uid"] == "${DS_PROMETHEUS}" for t in panel["targets"])
        g = panel["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, panel["title"]
        area = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not area & cells, f"panel {panel['title']!r} overlaps another"
        cells |= area
    variable = doc["templating"]["list"][0]
    assert metric_names(variable["query"]["query"]) <= exported_metrics()


def test_every_query_is_valid_promql(tmp_path):
    promtool = need_program("promtool", "prometheus")
    rules = [{"record": f"dashboard:query{i}", "expr": expr} for i, (_, expr) in enumerate(queries())]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    out = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
