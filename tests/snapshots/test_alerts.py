"""The shipped Prometheus alert rules load and behave as their unit tests say (promtool),
and every metric they use is one /__tollgate/metrics actually exports."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ALERTS = Path(__file__).resolve().parents[2] / "alerts"
PROMTOOL = shutil.which("promtool")
need_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="PROMTOOL MISSING: alert rules NOT checked. Install Debian package `prometheus` "
           "(scripts/_bootstrap.sh does it when run as root with apt-get).")


@need_promtool
def test_promtool_check_rules():
    out = subprocess.run([PROMTOOL, "check", "rules", str(ALERTS / "tollgate.rules.yml")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


@need_promtool
def test_promtool_unit_tests_of_the_alerts():
    out = subprocess.run([PROMTOOL, "test", "rules", str(ALERTS / "tollgate.test.yml")],
                         capture_output=True, text=True, timeout=60, cwd=ALERTS)
    assert out.returncode == 0, out.stdout + out.stderr


def test_alerts_use_only_exported_metric_names():
    from tests.integrations.dashboard import exported_metrics   # read from worker/, histogram series included
    exported = exported_metrics()
    used = set(re.findall(r"\b(tollgate_[a-z_]+)\b", (ALERTS / "tollgate.rules.yml").read_text()))
    assert used and used <= exported, f"alerts use metrics nobody exports: {sorted(used - exported)}"
