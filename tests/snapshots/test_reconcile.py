"""scripts/reconcile against a store file: per-period usage, quotas, over-quota, export."""
from __future__ import annotations

import asyncio
import io
import json
import sqlite3
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

from src.tollgate.snapshots import UsageRecord, decode_ndjson
from src.tollgate.usage import ACCOUNTING_PERIOD_MS
from tests.snapshots.fake_d1 import FakeD1
from worker.stores.d1 import D1Store

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import reconcile  # noqa: E402

CONFIG = """
[vars.TOLLGATE]
identity = ["header:x-api-key"]
[[vars.TOLLGATE.rules]]
name = "hourly"
limit = "100/hour"
[[vars.TOLLGATE.rules]]
name = "daily"
limit = "150/day"
"""
DAY = 86_400_000 * 20_000


def make_store(tmp_path: Path) -> Path:
    path = tmp_path / "usage.sqlite"
    db = FakeD1(str(path))
    h = ACCOUNTING_PERIOD_MS
    asyncio.run(D1Store(db).write([
        UsageRecord("alice", "hourly", DAY, 90, 90, 3, 0, 5),
        UsageRecord("alice", "hourly", DAY + h, 100, 120, 0, 0, 9),   # admitted 120 cost > 100
        UsageRecord("alice", "daily", DAY, 90, 90, 0, 0, 5),
        UsageRecord("alice", "daily", DAY + h, 100, 120, 0, 0, 9),    # 210 in the day > 150
        UsageRecord("bob", "hourly", DAY, 10, 10, 0, 0, 1),
        UsageRecord("bob", "daily", DAY, 10, 10, 0, 4, 1),             # shadow denials: over
    ], 0))
    db.conn.close()
    return path


def run_main(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with redirect_stdout(out):
        code = reconcile.main(list(argv))
    return code, out.getvalue()


def test_report_flags_what_is_over_quota(tmp_path):
    store = make_store(tmp_path)
    cfg = tmp_path / "wrangler.toml"
    cfg.write_text(CONFIG)
    code, text = run_main("report", "--db", str(store), "--config", str(cfg), "--json")
    assert code == 0
    doc = json.loads(text)
    over = {(o["client"], o["rule"], o["admitted"], o["quota"]) for o in doc["over"]}
    assert over == {("alice", "hourly", 120, 100), ("alice", "daily", 210, 150), ("bob", "daily", 10, 150)}
    alice_hourly = next(c for c in doc["clients"] if (c["client"], c["rule"]) == ("alice", "hourly"))
    assert [p["admitted"] for p in alice_hourly["periods"]] == [90, 120]


def test_report_text_and_export_roundtrip(tmp_path):
    store = make_store(tmp_path)
    cfg = tmp_path / "wrangler.toml"
    cfg.write_text(CONFIG)
    code, text = run_main("report", "--db", str(store), "--config", str(cfg))
    assert code == 0 and "over quota: 3" in text and "OVER alice" in text
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "reconcile.py"), "export", "--db", str(store),
                          "--client", "bob"], capture_output=True, check=True)
    assert [(r.rule, r.admitted) for r in decode_ndjson(out.stdout)] == [("daily", 10), ("hourly", 10)]


def test_sql_dump_is_accepted_and_a_missing_store_is_a_clear_error(tmp_path):
    store = make_store(tmp_path)
    dump = tmp_path / "usage.sql"
    dump.write_text("\n".join(sqlite3.connect(store).iterdump()))
    code, text = run_main("report", "--db", str(dump), "--config", "", "--json")
    assert code == 0 and len(json.loads(text)["clients"]) == 4
    err = io.StringIO()
    from contextlib import redirect_stderr
    with redirect_stderr(err):
        assert reconcile.main(["report", "--db", str(tmp_path / "nope.sqlite")]) == 2
    assert "no such file" in err.getvalue()


def test_drift_verdicts():
    from src.tollgate.snapshots import UsageRecord as R
    live = {"client": "c", "rules": {
        "a": {"period_start_ms": 0, "allowed": 5, "admitted": 5, "denied": 0, "shadow_denied": 0, "version": 6},
        "b": {"period_start_ms": 0, "allowed": 5, "admitted": 5, "denied": 0, "shadow_denied": 0, "version": 5},
        "c": {"period_start_ms": 0, "allowed": 1, "admitted": 1, "denied": 0, "shadow_denied": 0, "version": 1}}}
    stored = [R("c", "a", 0, 4, 4, 0, 0, 5), R("c", "b", 0, 5, 5, 0, 0, 5), R("c", "c", 0, 9, 9, 0, 0, 7),
              R("c", "d", 0, 1, 1, 0, 0, 1)]
    verdicts = {d["rule"]: d["verdict"] for d in reconcile.drift_of(live, stored)}
    assert verdicts["a"] == "pending flush" and verdicts["b"] == "in sync"
    assert verdicts["c"].startswith("STORE AHEAD") and verdicts["d"].startswith("STORE AHEAD")
