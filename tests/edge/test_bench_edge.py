"""`scripts/bench edge` on a small run: every mix in each mode, the flood costing a small
fraction of what it cost before the deny cache, leases cutting the hot client's bucket calls
with no over-admission, usage equal to what was admitted, and the closing line."""
import re
import subprocess
import sys
from pathlib import Path

from scripts.bench_edge import MIXES

ROOT = Path(__file__).resolve().parents[2]


def test_bench_edge_small_run_prints_every_mix_and_the_closing_line():
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_edge.py"), "--seconds", "8",
                          "--isolates", "3"], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    rows = {}
    for line in lines:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 10 and cells[2].replace(",", "").isdigit():
            rows[(cells[0], cells[1])] = cells
    assert len(rows) == 3 * len(MIXES), rows.keys()
    for (mix, mode), cells in rows.items():
        assert float(cells[6]) <= (0.0 if mode != "lease" else 1.0), f"{mix} {mode}: over-admission {cells[6]}%"
        assert cells[9] == "yes", f"{mix} {mode}: usage counted differs from what was admitted: {cells[9]}"
    before = float(rows[("flood, daily quota gone", "no deny cache")][3])
    after = float(rows[("flood, daily quota gone", "strict")][3])
    assert before == 1.0 and after < 0.05, (before, after)
    assert rows[("flood, daily quota gone", "strict")][7].startswith("0.0 / ")          # answered at once
    hot = "hot 80% of 60,000/min"
    strict, lease = float(rows[(hot, "strict")][3]), float(rows[(hot, "lease")][3])
    assert strict == 1.0 and lease < 0.2, (strict, lease)
    assert float(rows[(hot, "lease")][8].rstrip("%")) >= 80.0                          # most decided locally
    cold = "cold 3/min, 100 clients"
    assert float(rows[(cold, "lease")][3]) <= float(rows[(cold, "strict")][3])        # leasing costs cold clients nothing
    assert float(rows[(cold, "lease")][4]) <= float(rows[(cold, "strict")][4])
    assert re.fullmatch(r"edge: lease \d+\.\d% fewer bucket calls, -?\d+\.\d\d% worst overshoot; "
                        r"flood \d+\.\d bucket calls per isolate-minute", lines[-1])
