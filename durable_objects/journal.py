"""The bucket's decision journal: one row that makes every admitted decision durable.

Why: Durable Object SQLite bills per row written, and an admitted decision used to
write one `rule_state` row per matching rule (three for the sample config), a
denied one a row too. Now an admitted decision writes exactly one row, this
journal, which holds every rule row that changed since the last checkpoint;
readers lay it over `rule_state` in memory, and `RuleStore.checkpoint` writes the rows
only before reset or restore rewrite them, or when the journal grows past one
statement's worth of rows. After a SIGKILL the next
instance reads `rule_state` and lays the journal over it, so admitted usage is
exact. Denied decisions write nothing: their counts live in memory until the next
admitted decision's journal row or the alarm's push (at most SNAPSHOT_DELAY_MS
later), so a crash loses at most the denials of that interval, and those were
never sent to the outbox (the push writes the journal row before it sends, so no
version that reached the outbox is ever missing from storage).

The journal row is `INTEGER PRIMARY KEY` (the rowid itself): no index row is
written beside it.
"""
from __future__ import annotations

import json
from functools import lru_cache
from typing import Any, Iterable

SCHEMA = ("CREATE TABLE IF NOT EXISTS journal (id INTEGER PRIMARY KEY CHECK (id = 1), "
          "rows TEXT NOT NULL)")
WRITE = ("INSERT INTO journal (id, rows) VALUES (1, ?) "
         "ON CONFLICT(id) DO UPDATE SET rows = excluded.rows")
READ = "SELECT rows FROM journal WHERE id = 1"
CLEAR = "DELETE FROM journal"

_FIELDS = ("period_start", "allowed", "admitted", "denied", "shadow_denied", "version", "sent_version")


@lru_cache(maxsize=1024)
def _quoted(name: str) -> str:
    return json.dumps(name)


def encode(rows: Iterable[Any]) -> str:
    """RuleRows as compact JSON text; limiter state as decimal text (it may pass 2^53).
    Built by hand: this runs on every admitted decision, and json.dumps of nested lists
    cost about a tenth of the bucket's CPU per decision (measured on warm three-rule
    decisions, 2026-12-01: 17.8 -> 15.6 us; README, "Decide at the edge")."""
    parts = []
    for r in rows:
        st = r.state
        state = "null" if st is None else f'["{st[0]}","{st[1]}","{st[2]}"]'
        parts.append(f"[{_quoted(r.rule)},{state},{r.period_start},{r.allowed},{r.admitted},{r.denied},"
                     f"{r.shadow_denied},{r.version},{r.sent_version}]")
    return "[" + ",".join(parts) + "]"


def decode(text: str, make_row: Any) -> list[Any]:
    """The rows `encode` wrote, built with `make_row(rule, period_start)`."""
    rows = []
    for item in json.loads(text):
        rule, state, *values = item
        row = make_row(rule, values[0])
        row.state = None if state is None else tuple(int(v) for v in state)
        for name, value in zip(_FIELDS, values):
            setattr(row, name, value)
        rows.append(row)
    return rows
