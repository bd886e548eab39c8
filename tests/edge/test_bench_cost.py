"""`scripts/bench cost` on a small run: a price per mix and mode from measured counts, the
flood cheaper with the deny cache, and the prices file naming its date and sources."""
import json
import re
import subprocess
import sys
from pathlib import Path

from scripts.bench_edge import MIXES

ROOT = Path(__file__).resolve().parents[2]


def test_prices_carry_their_date_and_sources():
    prices = json.loads((ROOT / "scripts" / "cloudflare_prices.json").read_text())
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", prices["read"])
    assert "cloudflare-docs" in prices["sources"]["durable_objects"]
    assert prices["usd_per_million"]["do_row_written"] == 1.00 and prices["usd_per_million"]["do_request"] == 0.15


def test_bench_cost_small_run_prices_every_mix():
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_cost.py"), "--seconds", "6",
                          "--isolates", "3"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    rows = [line.strip("|").split("|") for line in out.stdout.splitlines() if line.startswith("| ") and "$" not in line]
    priced = {(c[0].strip(), c[1].strip()): float(c[5]) for c in rows if c[5].strip()[:1].isdigit()}
    assert len(priced) == 3 * len(MIXES)                      # every mix in each mode
    hot = "hot 80% of 60,000/min"
    assert priced[(hot, "lease")] < priced[(hot, "strict")] / 2, priced   # leases save most of the bucket calls
    assert all(v >= 0.30 for v in priced.values())            # every request is at least a Worker request
    last = out.stdout.strip().splitlines()[-1]
    m = re.fullmatch(r"cost: a flood on an exhausted quota \$(\d+\.\d+) per million requests "
                     r"\(\$(\d+\.\d+) before the deny cache\)", last)
    assert m and float(m.group(1)) < float(m.group(2)), last
