"""`scripts/bench core` runs every implementation on one workload and ends with the summary line."""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_core_small_run_prints_table_and_summary():
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_core.py"), "--requests", "3000",
                          "--repeat", "1"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    for name in ("tollgate gcra, 1 rule", "tollgate 3 rules", "limits moving window",
                 "limits sliding window counter", "pyrate-limiter", "token-bucket"):
        assert any(line.startswith(name) for line in lines), name
    assert re.fullmatch(r"core: \d+ decisions/s, \d+\.\d\dx the fastest peer \(.+\)", lines[-1]), lines[-1]
    # same workload, same limit: the one-rule GCRA admits exactly what the token bucket peer admits
    admitted = {line.rsplit(None, 1)[0].rsplit("  ", 1)[0].strip(): int(line.rsplit(None, 1)[1])
                for line in lines if line[:1].isalpha() and not line.startswith(("core:", "ceiling:", "implementation"))}
    assert admitted["tollgate gcra, 1 rule"] == admitted["token-bucket MemoryStorage"]
    # the bound rows: the bare GCRA makes the same verdicts; the floor limits nothing
    assert admitted["bare GCRA inlined in the loop, bool only"] == admitted["token-bucket MemoryStorage"]
    assert admitted["floor: clock + dict get/set, no limiter"] == 3000
    assert re.fullmatch(r"ceiling: a bare inlined GCRA \d+\.\d\dx and no limiter at all \d+\.\d\dx .+", lines[-2])
