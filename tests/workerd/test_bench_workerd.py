"""scripts/bench workerd runs end to end (a tiny run: the figures are the benchmark's job,
this only proves every subject starts, answers and is measured on real workerd)."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from scripts.workerd import toolchain

ROOT = Path(__file__).resolve().parents[2]


def test_bench_workerd_measures_every_subject_and_states_the_goal_line():
    done = subprocess.run([sys.executable, "scripts/bench_workerd.py", "--requests", "40", "--rounds", "1",
                           "--connections", "4", "--clients", "5"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env=toolchain.node_path_env())
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    for subject in ("tollgate /allow", "tollgate gateway", "tollgate gateway+slot", "tollgate /health", "python floor",
                    "python RPC floor", "python write floor", "JS GCRA", "local runtime /allow"):
        row = re.search(rf"^{re.escape(subject)}\s+(\d+\.\d+)", out, re.MULTILINE)
        assert row and float(row.group(1)) > 0, (subject, out)
    assert re.search(r"^bundle: [\d.]+ KiB \(gzip [\d.]+ KiB\)$", out, re.MULTILINE), out
    assert re.search(r"^tollgate /allow above the Python RPC floor: -?\d+\.\d+ ms CPU \(goal <= 0.3\)$", out,
                     re.MULTILINE), out
    assert re.search(r"^tollgate /allow above the Python write floor: -?\d+\.\d+ ms CPU$", out, re.MULTILINE), out


def test_bench_workerd_interleaved_blocks_compare_an_older_commit_in_the_same_blocks():
    """--interleave runs the subjects side by side in alternating blocks; --against takes a list."""
    done = subprocess.run([sys.executable, "scripts/bench_workerd.py", "--requests", "40", "--interleave", "2",
                           "--connections", "4", "--clients", "5", "--against", "HEAD~1,HEAD",
                           "--only", "tollgate /allow,python RPC floor"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env=toolchain.node_path_env())
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert len(re.findall(r"^  block [12]: ", out, re.MULTILINE)) == 8, out     # 4 subjects x 2 blocks
    assert "40 requests x 2 interleaved blocks" in out and "median (min-max) over blocks" in out, out
    for rev in ("HEAD~1", "HEAD"):
        assert re.search(rf"^tollgate /allow @{re.escape(rev)} above the Python RPC floor: -?\d+\.\d+ ", out,
                         re.MULTILINE), out
