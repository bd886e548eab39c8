"""`scripts/reconcile --client` takes the identity as users write it, or a key prefix, and says
clearly when nothing matches."""
from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from src.tollgate.identity import Identity, client_key
from tests.runtime.conftest import ROOT

SECRET = "reconcile-test-secret"
CLIENTS = {"alice": Identity("key", "alice"), "ip4": Identity("ip", "192.0.2.1"),
           "ip6": Identity("ip", "2001:db8:1:2::/64")}


def store(tmp_path: Path) -> tuple[Path, Path]:
    config = tmp_path / "wrangler.toml"
    config.write_text('[vars.TOLLGATE]\n[[vars.TOLLGATE.rules]]\nname = "daily"\nlimit = "100/day"\n')
    (tmp_path / ".dev.vars").write_text(f"IDENTITY_SECRET={SECRET}\n")
    db = tmp_path / "usage.sqlite"
    conn = sqlite3.connect(db)
    for sql in sorted((ROOT / "migrations").glob("*.sql")):
        conn.executescript(sql.read_text())
    for n, ident in enumerate(CLIENTS.values()):
        conn.execute("INSERT INTO usage (client, rule, period_start, allowed, admitted, denied, shadow_denied, "
                     "version, updated_at) VALUES (?, 'daily', 0, ?, ?, 0, 0, 1, 0)", (client_key(SECRET.encode(), ident), n + 1, n + 1))
    conn.commit()
    conn.close()
    return config, db


def reconcile(config: Path, db: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "reconcile.py"), "export", "--db", str(db),
                           "--config", str(config), *args], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin"})


@pytest.mark.parametrize("written, who", [
    ("alice", "alice"), ("key:alice", "alice"), ("ip:192.0.2.1", "ip4"), ("192.0.2.1", "ip4"),
    ("2001:db8:1:2::99", "ip6"), ("ip:2001:db8:1:2::/64", "ip6"),
])
def test_an_identity_as_users_write_it_finds_its_usage(tmp_path, written, who):
    config, db = store(tmp_path)
    done = reconcile(config, db, "--client", written)
    assert done.returncode == 0, done.stderr
    key = client_key(SECRET.encode(), CLIENTS[who])
    assert done.stdout.count('"client"') == 1 and key in done.stdout


def test_the_prefix_the_report_prints_finds_the_client(tmp_path):
    config, db = store(tmp_path)
    key = client_key(SECRET.encode(), CLIENTS["alice"])
    done = reconcile(config, db, "--client", key[:16])
    assert done.returncode == 0 and key in done.stdout, done.stderr


def test_nothing_matching_is_said_clearly(tmp_path):
    config, db = store(tmp_path)
    done = reconcile(config, db, "--client", "mallory")
    assert done.returncode == 2 and done.stdout == ""
    assert "no usage in the store matches --client 'mallory'" in done.stderr
    assert "key:mallory" in done.stderr and "3 clients in the store" in done.stderr
    assert SECRET not in done.stderr
