"""The time-compressed copy of the shipped alert rules (src/tollgate_tools/alert_rules.py):
the same rules with every duration divided, nothing else changed, and valid for promtool."""
from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from src.tollgate_tools.alert_rules import compress_expr, compressed_copy, duration_ms, format_ms, main
from tests.integrations.programs import ROOT, need_program

SHIPPED = ROOT / "alerts" / "tollgate.rules.yml"


def test_durations_round_trip_and_bad_ones_are_refused():
    assert duration_ms("1h30m") == 5_400_000 and duration_ms("500ms") == 500
    assert [format_ms(ms) for ms in (86_400_000, 900_000, 15_000, 250)] == ["1d", "15m", "15s", "250ms"]
    with pytest.raises(ValueError, match="not a Prometheus duration"):
        duration_ms("10 minutes")


def test_ranges_subqueries_and_offsets_are_divided():
    expr = 'rate(x[15m]) > 5 * rate(x[15m] offset 1d) and max_over_time(y[1h:1m]) > 0 or z[5m:]'
    assert compress_expr(expr, 60) == ('rate(x[15s]) > 5 * rate(x[15s] offset 24m) and '
                                       'max_over_time(y[1m:1s]) > 0 or z[5s:]')


def test_the_copy_of_the_shipped_file_changes_only_durations():
    shipped = yaml.safe_load(SHIPPED.read_text())
    copy = yaml.safe_load(compressed_copy(SHIPPED, 60, "1s"))
    for group, fast in zip(shipped["groups"], copy["groups"], strict=True):
        assert fast["interval"] == "1s"
        for rule, quick in zip(group["rules"], fast["rules"], strict=True):
            assert {k: v for k, v in quick.items() if k not in ("expr", "for")} == \
                   {k: v for k, v in rule.items() if k not in ("expr", "for")}
            if "for" in rule:
                assert duration_ms(quick["for"]) * 60 == duration_ms(rule["for"])
            # The same expression once durations are blanked out, and every duration divided.
            blank = lambda e: re.sub(r"\d+(?:ms|s|m|h|d|w|y)\b", "D", e)
            assert blank(quick["expr"]) == blank(rule["expr"])
            durations = lambda e: [duration_ms(d) for d in re.findall(r"(?<=\[)\d+[smhdwy]|(?<=offset )\d+[smhdwy]", e)]
            assert [d * 60 for d in durations(quick["expr"])] == durations(rule["expr"])
    spike = next(r for r in copy["groups"][0]["rules"] if r.get("alert") == "TollgateDenialSpike")
    assert spike["for"] == "10s" and "[15s]" in spike["expr"]


def test_promtool_accepts_the_copy(tmp_path):
    promtool = need_program("promtool", "prometheus")
    out = tmp_path / "fast.rules.yml"
    assert main([str(SHIPPED), "--factor", "60", "--interval", "1s", "--output", str(out)]) == 0
    assert out.read_text().startswith("# GENERATED from tollgate.rules.yml")
    check = subprocess.run([promtool, "check", "rules", str(out)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0 and "SUCCESS" in check.stdout, check.stdout + check.stderr


def test_a_missing_file_is_a_clear_error(tmp_path, capsys):
    assert main([str(tmp_path / "nope.yml")]) == 2
    assert "nope.yml" in capsys.readouterr().err
