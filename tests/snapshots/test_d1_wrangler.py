"""The D1 schema and the flush's upsert statements on Cloudflare's own local D1
(wrangler 4 + workerd, offline): `wrangler d1 migrations apply` understands
migrations/, the triggers keep usage_totals, and a replayed batch counts once."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from src.tollgate.snapshots import UsageRecord
from src.tollgate.usage_table import ROWS_PER_STATEMENT, upsert_statement

ROOT = Path(__file__).resolve().parents[2]
WRANGLER = ROOT / "node_modules" / ".bin" / "wrangler"
pytestmark = pytest.mark.skipif(not WRANGLER.exists() or shutil.which("node") is None,
                                reason="wrangler (npm) or node not installed: D1 schema not checked on workerd")


def wrangler(cwd: Path, *args: str) -> str:
    out = subprocess.run([str(WRANGLER), *args, "--local", "--persist-to", str(cwd / "state")], cwd=cwd,
                         capture_output=True, text=True, timeout=120, env={**os.environ, "CI": "1"})
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return out.stdout


def inline(sql: str, params: list[str]) -> str:
    for p in params:
        sql = sql.replace("?", "'" + p.replace("'", "''") + "'", 1)
    return sql


def test_migrations_apply_and_upserts_keep_the_highest_version(tmp_path):
    shutil.copytree(ROOT / "migrations", tmp_path / "migrations")
    (tmp_path / "x.js").write_text("export default {}\n")
    (tmp_path / "wrangler.toml").write_text(
        'name = "d1check"\nmain = "x.js"\ncompatibility_date = "2026-10-01"\n'
        '[[d1_databases]]\nbinding = "USAGE_DB"\ndatabase_name = "tollgate-usage"\n'
        'database_id = "00000000-0000-0000-0000-000000000000"\nmigrations_dir = "migrations"\n')
    wrangler(tmp_path, "d1", "migrations", "apply", "tollgate-usage")
    rows = [UsageRecord(f"client-{i}", "daily", 3_600_000, 2, 4, 1, 0, 3) for i in range(ROWS_PER_STATEMENT)]
    batch = tmp_path / "batch.sql"
    batch.write_text(inline(*upsert_statement(rows, 123)) + ";\n")
    older = tmp_path / "older.sql"
    older.write_text(inline(*upsert_statement([UsageRecord("client-0", "daily", 3_600_000, 99, 99, 0, 0, 2)], 124))
                     + ";\n")
    for f in (batch, batch, older):  # the same batch twice, then an older snapshot
        wrangler(tmp_path, "d1", "execute", "tollgate-usage", "--file", str(f))
    out = wrangler(tmp_path, "d1", "execute", "tollgate-usage", "--json", "--command",
                   "SELECT (SELECT COUNT(*) FROM usage) AS n, allowed, admitted, denied FROM usage_totals")
    [result] = json.loads(out)
    assert result["results"] == [{"n": 50, "allowed": 100, "admitted": 200, "denied": 50}]
