"""Real Prometheus scraping the Worker's /__tollgate/metrics (bearer token) with
the shipped alert rules, time-compressed by src/tollgate_tools/alert_rules.py,
and a real Alertmanager: a 429 spike driven through the gateway reaches
Alertmanager as TollgateDenialSpike, and the Grafana dashboard's queries show it."""
from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

from tests.conftest import free_port
from tests.gateway.support import SECRETS, Origin, write_config
from tests.integrations.conftest import fetch
from tests.integrations.dashboard import queries
from tests.integrations.programs import ROOT, Program, need_program
from src.tollgate_tools.alert_rules import compressed_copy

SHIPPED_RULES = ROOT / "alerts" / "tollgate.rules.yml"
FACTOR = 60                 # the shipped 10 minutes of `for:` become 10 s
SPIKE_RULES = {"identity": ["header:x-api-key"],
               "rules": [{"name": "per-client", "limit": "2/second", "burst": 2}]}


def get_json(url: str) -> object:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def alertmanager(folder: Path) -> Program:
    binary = need_program("prometheus-alertmanager", "prometheus-alertmanager")
    port = free_port()
    config = folder / "alertmanager.yml"
    config.write_text(yaml.safe_dump({"route": {"receiver": "nobody", "group_wait": "1s"},
                                      "receivers": [{"name": "nobody"}]}))
    return Program([binary, f"--config.file={config}", f"--storage.path={folder / 'am-data'}",
                    f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
                   port, folder / "alertmanager.log")


def prometheus(folder: Path, target: str, alertmanager_url: str) -> Program:
    binary = need_program("prometheus", "prometheus")
    port = free_port()
    (folder / "tollgate.rules.yml").write_text(compressed_copy(SHIPPED_RULES, FACTOR, "1s"))
    config = folder / "prometheus.yml"
    config.write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(folder / "tollgate.rules.yml")],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager_url.removeprefix("http://")]}]}]},
        "scrape_configs": [{"job_name": "tollgate", "metrics_path": "/__tollgate/metrics",
                            "authorization": {"type": "Bearer", "credentials": SECRETS["ADMIN_TOKEN"]},
                            "static_configs": [{"targets": [target.removeprefix("http://")]}]}],
    }))
    return Program([binary, f"--config.file={config}", f"--storage.tsdb.path={folder / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{port}"], port, folder / "prometheus.log")


def dashboard_query(prometheus_url: str, expr: str) -> list:
    answer = get_json(f"{prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    assert answer["status"] == "success", (expr, answer)
    return answer["data"]["result"]


def alert_names(alertmanager_url: str) -> dict[str, dict]:
    return {a["labels"]["alertname"]: a for a in get_json(f"{alertmanager_url}/api/v2/alerts")}


def test_a_429_spike_through_the_gateway_fires_the_alert_in_alertmanager(tmp_path, edge_process, runtime):
    config = write_config(tmp_path / "cfg", SPIKE_RULES, {"SNAPSHOT_DELAY_MS": "200", "OUTBOX_SHARDS": "2"})
    with Origin() as origin:
        edge = edge_process(config, tmp_path / "state", origin=origin.url)
        with alertmanager(tmp_path) as am, prometheus(tmp_path, edge.url, am.url) as prom:
            started = time.monotonic()
            statuses: dict[int, int] = {}
            fired = None
            while fired is None and time.monotonic() - started < 50:
                for _ in range(5):                      # about 10 x the rule's 2/second: mostly 429s
                    status = fetch(edge.url, "GET", "/v1/items", {"X-Api-Key": "spiky"}).status
                    statuses[status] = statuses.get(status, 0) + 1
                fired = alert_names(am.url).get("TollgateDenialSpike")
                time.sleep(0.1)                         # poll interval while waiting for the alert
            elapsed = time.monotonic() - started
            targets = get_json(f"{prom.url}/api/v1/targets")["data"]["activeTargets"]
            assert [t["health"] for t in targets] == ["up"], targets      # the bearer token was accepted
            assert fired is not None, (statuses, get_json(f"{prom.url}/api/v1/alerts"), prom.log_text()[-2000:])
            answers = {title: dashboard_query(prom.url, expr) for title, expr in queries()}
    # The dashboard's queries run on the real metrics, and the decision panels show the spike.
    for title in ("Denied share (429s)", "Decisions by result", "Denials by rule"):
        assert answers[title], f"dashboard panel {title!r} shows nothing"
    assert float(answers["Denied share (429s)"][0]["value"][1]) > 0.5
    assert fired["labels"]["severity"] == "warning"
    assert fired["status"]["state"] == "active"
    assert fired["annotations"]["summary"].startswith("Tollgate denies ")
    assert statuses.get(429, 0) > 4 * statuses.get(201, 0) > 0, statuses
    print(json.dumps(fired, indent=2))
    print(f"TollgateDenialSpike reached Alertmanager {elapsed:.1f} s after the spike began ({statuses})")
