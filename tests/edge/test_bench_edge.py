"""`scripts/bench edge` on a small run: every mix and mode, the flood costing a small
fraction of what it cost before the deny cache, no over-admission, and the closing line."""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_edge_small_run_prints_every_mix_and_the_closing_line():
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_edge.py"), "--seconds", "8",
                          "--isolates", "3"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    rows = {}
    for line in lines:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 8 and cells[2].replace(",", "").isdigit():
            rows[(cells[0], cells[1])] = cells
    assert len(rows) == 12, rows.keys()
    for (mix, mode), cells in rows.items():
        assert float(cells[6]) <= 0.0, f"{mix} {mode}: over-admission {cells[6]}%"     # strict never over-admits
    before = float(rows[("flood, daily quota gone", "no deny cache")][3])
    after = float(rows[("flood, daily quota gone", "strict")][3])
    assert before == 1.0 and after < 0.05, (before, after)
    assert rows[("flood, daily quota gone", "strict")][7].startswith("0.0 / ")          # answered at once
    assert re.fullmatch(r"edge: lease n/a \(not built\); flood \d+\.\d bucket calls per isolate-minute", lines[-1])
