"""The core suite (tests/core) under pytest inside the production interpreter:
npm pyodide 314.0.6 (CPython 3.14), what workerd runs for our compatibility date.

The Worker and Durable Object code is proven on real workerd by the two-runtime
suite (tests/gateway, tests/workerd); this proves the pure core on the same
interpreter, test for test. scripts/test installs node and the npm packages, so a
missing one is a failure here, never a skip.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.workerd import toolchain

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SUMMARY = re.compile(r"^pyodide core: (\d+) passed, (\d+) failed, (\d+) skipped$", re.MULTILINE)


@pytest.mark.timeout(900)
def test_core_suite_passes_inside_pyodide_314() -> None:
    env = toolchain.node_path_env()
    pkg = ROOT / "node_modules" / "pyodide" / "package.json"
    assert pkg.is_file(), "node_modules/pyodide is missing: scripts/test runs `npm ci` first"
    assert json.loads(pkg.read_text())["version"].startswith("314."), "production runs Pyodide 314"
    boot = subprocess.run([sys.executable, str(HERE / "bootstrap.py")], capture_output=True, text=True, check=True)
    done = subprocess.run(["node", str(HERE / "core_on_pyodide.mjs"), boot.stdout], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=840)
    print(done.stdout[-6000:])
    found = SUMMARY.findall(done.stdout)
    assert found, f"no summary line (exit {done.returncode})\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    passed, failed, skipped = map(int, found[-1])
    assert "python 3.14." in done.stdout
    assert done.returncode == 0 and failed == 0 and passed > 100, f"{passed} passed, {failed} failed"
