"""scripts/reconcile across a secret rotation: `--client alice` finds her usage under the old
and the new secret (IDENTITY_SECRET and IDENTITY_SECRET_PREVIOUS), and in rolled-up days."""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

from src.tollgate.identity import Identity, client_key

ROOT = Path(__file__).resolve().parents[2]
OLD, NEW = "secret-before", "secret-after"
ALICE = Identity("key", "alice")


def test_report_for_a_client_covers_both_names_and_the_daily_rollups(tmp_path):
    config = tmp_path / "wrangler.toml"
    config.write_text('[vars.TOLLGATE]\n[[vars.TOLLGATE.rules]]\nname = "daily"\nlimit = "100/day"\n'
                      'algorithm = "fixed_window"\n')
    (tmp_path / ".dev.vars").write_text(f"IDENTITY_SECRET={NEW}\nIDENTITY_SECRET_PREVIOUS={OLD}\n")
    db = tmp_path / "usage.sqlite"
    conn = sqlite3.connect(db)
    for sql in sorted((ROOT / "migrations").glob("*.sql")):
        conn.executescript(sql.read_text())
    old_key, new_key = client_key(OLD.encode(), ALICE), client_key(NEW.encode(), ALICE)
    day = 1_800_000_000_000 - 1_800_000_000_000 % 86_400_000
    conn.execute("INSERT INTO usage_daily VALUES (?, 'daily', ?, 60, 60, 0, 0, 5, 9, 0)", (old_key, day - 86_400_000))
    conn.execute("INSERT INTO usage VALUES (?, 'daily', ?, 30, 30, 0, 0, 3, 0)", (old_key, day))
    conn.execute("INSERT INTO usage VALUES (?, 'daily', ?, 80, 80, 1, 0, 2, 0)", (new_key, day + 3_600_000))
    conn.execute("INSERT INTO usage VALUES (?, 'daily', ?, 7, 7, 0, 0, 1, 0)", ("someone-else", day))
    conn.commit()
    conn.close()
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "reconcile.py"), "report", "--json", "--db", str(db),
                           "--config", str(config), "--client", "alice"], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert sorted(c["client"] for c in out["clients"]) == sorted([old_key, new_key])
    windows = {(c["client"], w["window_start_ms"]): w["admitted"] for c in out["clients"] for w in c["windows"]}
    assert windows == {(old_key, day - 86_400_000): 60, (old_key, day): 30, (new_key, day): 80}
