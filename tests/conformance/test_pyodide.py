"""Run the Pyodide conformance harness (tests/conformance/harness.mjs) under pytest.

The harness runs the core suite inside Pyodide 0.28.3, then the wrangler dry-run
bundle with Cloudflare's own `workers` SDK, and prints the import-time and
CPU-per-decision figures. It needs node (CI has it): without node this test is
skipped with the reason; with node, any harness failure fails the test.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SUMMARY = re.compile(r"^conformance: (\d+) passed, (\d+) failed$", re.MULTILINE)


@pytest.mark.timeout(660)  # about 30 s on a quiet machine; the subprocess itself stops at 600 s
def test_edge_code_conforms_on_pyodide_with_the_real_sdk() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not on PATH: the Pyodide conformance harness needs Node 20+ "
                    "(install node, then scripts/test installs the pinned npm packages)")
    if not (ROOT / "node_modules" / "pyodide").is_dir():
        pytest.fail("node_modules/pyodide is missing: run scripts/test (it runs `npm ci`) first")
    env = dict(os.environ, TOLLGATE_PYTHON=sys.executable)
    done = subprocess.run([node, str(HERE / "harness.mjs")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    print(done.stdout)
    if done.stderr.strip():
        print(done.stderr, file=sys.stderr)
    found = SUMMARY.findall(done.stdout)
    assert found, f"the harness printed no summary line (exit {done.returncode})\n{done.stderr[-4000:]}"
    passed, failed = map(int, found[-1])
    assert done.returncode == 0 and failed == 0 and passed > 0, (
        f"conformance harness: {passed} passed, {failed} failed (exit {done.returncode})")
