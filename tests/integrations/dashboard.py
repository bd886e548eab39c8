"""What the shipped Grafana dashboard queries, and what the Worker exports, both
read from the files themselves (no hand-kept list of metric names)."""
from __future__ import annotations

import ast
import json
import re

from tests.integrations.programs import INTEGRATIONS, ROOT

DASHBOARD = INTEGRATIONS / "grafana" / "tollgate-dashboard.json"
# Grafana's macros and the dashboard's variable, as a real Prometheus query would see them.
MACROS = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h", "$rule": ".*"}
_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def exported_metrics() -> set[str]:
    """Every family the Worker's exposition builds: the first argument of each
    `<exposition>.family("name", "kind", ...)` call under worker/, and the histograms of
    worker.metrics.LATENCY_FAMILIES with their `_bucket`, `_sum` and `_count` series."""
    from worker.metrics import LATENCY_FAMILIES      # the histograms: names held in one table
    names = {name + s for _, name, _ in LATENCY_FAMILIES for s in _HISTOGRAM_SUFFIXES}
    for path in (ROOT / "worker").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "family"
                    and len(node.args) >= 2 and all(isinstance(a, ast.Constant) for a in node.args[:2])):
                name, kind = node.args[0].value, node.args[1].value
                if kind == "histogram":
                    names.update(name + s for s in _HISTOGRAM_SUFFIXES)
                else:
                    names.add(name)
    return names


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def queries(doc: dict | None = None) -> list[tuple[str, str]]:
    """(panel title, PromQL with the macros filled in) for every target of every panel."""
    doc = doc if doc is not None else dashboard()
    out = []
    for panel in doc["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for macro, value in MACROS.items():
                expr = expr.replace(macro, value)
            out.append((panel["title"], expr))
    return out


def metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\b(tollgate_[a-z_]+)\b", expr))
