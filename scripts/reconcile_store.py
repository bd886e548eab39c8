"""scripts/reconcile's store: find it, open it, read its rows (hourly and daily rollups).

Apart from scripts/reconcile.py so that file keeps to its commands; the rollups
(usage_daily, src/tollgate/retention.py) are read here as one record per day.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

from src.tollgate.snapshots import UsageRecord
from src.tollgate.usage import ACCOUNTING_PERIOD_MS


def find_local_d1(state: Path, error: type[Exception], binding: str = "USAGE_DB") -> Path:
    """The local runtime keeps D1 at <state>/d1/<binding>.sqlite (src/localedge/README.md);
    `wrangler dev --persist-to <state>` keeps it under <state>/v3/d1/."""
    ours = state / "d1" / f"{binding}.sqlite"
    if ours.exists():
        return ours
    theirs = sorted(p for p in (state / "v3" / "d1").rglob("*.sqlite") if p.name != "metadata.sqlite") \
        if (state / "v3" / "d1").is_dir() else []
    if len(theirs) == 1:
        return theirs[0]
    raise error(f"no D1 database for {binding} under {state} (looked for {ours}); pass --db PATH")


def open_as(db: str | None, state: str, error: type[Exception]) -> sqlite3.Connection:
    """The store as a read-only SQLite connection (a .sql dump is loaded into memory)."""
    path = Path(db) if db else find_local_d1(Path(state), error)
    if not path.exists():
        raise error(f"--db {path}: no such file")
    if path.suffix == ".sql":
        conn = sqlite3.connect(":memory:")
        conn.executescript(path.read_text())
    else:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        conn.execute("SELECT 1 FROM usage LIMIT 1")
    except sqlite3.Error as exc:
        raise error(f"{path}: no usage table ({exc}); apply migrations/0001_usage.sql") from None
    return conn


def load_rows(conn: sqlite3.Connection, client: str | None = None) -> list[tuple[UsageRecord, int]]:
    """(record, span_ms): hourly rows, and the daily rollups of older hours (usage_daily,
    migrations/0002_usage_daily.sql) as one record per day, its start as period_start."""
    from src.tollgate.retention import ALL_USAGE
    try:
        conn.execute("SELECT 1 FROM usage_daily LIMIT 1")
        source = f"({ALL_USAGE})"
    except sqlite3.Error:   # a store from before the rollups
        source = f"(SELECT *, {ACCOUNTING_PERIOD_MS} AS span_ms FROM usage)"
    q = (f"SELECT client, rule, period_start, allowed, admitted, denied, shadow_denied, version, span_ms FROM {source}"
         + (" WHERE client = ?" if client else "") + " ORDER BY client, rule, period_start")
    return [(UsageRecord(*tuple(r)[:8]), r["span_ms"]) for r in conn.execute(q, (client,) if client else ())]


def load_records(conn: sqlite3.Connection, client: str | None = None) -> list[UsageRecord]:
    return [rec for rec, _ in load_rows(conn, client)]
