"""A ClientBucket's own SQLite: schema, migrations, and every statement on its tables.

Why one owner: the decision, the outbox push, admin and restore all touch the
same rows; keeping their SQL here means one place knows the columns, the
decimal-text rule for limiter state and the in-memory copy that must be
dropped whenever rows are rewritten behind it.

The memory copy: this instance is the only writer of its storage (one instance
per object, one event at a time), so a row read or written once stays true
until this instance changes it. A warm bucket decides without reading and
writes with one statement (`record`).
"""
from __future__ import annotations

from typing import Any

from durable_objects.sql import Sql, migrate
from src.tollgate.algorithms import State
from src.tollgate.decision import Decision
from src.tollgate.snapshots import UsageRecord

# Migrations run in the constructor: a deployed object keeps its storage, so
# every schema change is a new numbered step applied once, recorded in meta.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE IF NOT EXISTS rule_state (
             rule TEXT PRIMARY KEY,
             s0 INTEGER, s1 INTEGER, s2 INTEGER,
             period_start INTEGER NOT NULL,
             allowed INTEGER NOT NULL, admitted INTEGER NOT NULL,
             denied INTEGER NOT NULL, shadow_denied INTEGER NOT NULL,
             version INTEGER NOT NULL,
             sent_version INTEGER NOT NULL DEFAULT 0)""",
        """CREATE TABLE IF NOT EXISTS closed_usage (
             rule TEXT NOT NULL, period_start INTEGER NOT NULL,
             allowed INTEGER NOT NULL, admitted INTEGER NOT NULL,
             denied INTEGER NOT NULL, shadow_denied INTEGER NOT NULL,
             version INTEGER NOT NULL,
             PRIMARY KEY (rule, period_start))""",
    ),
    2: (
        # Usage restored from the store (restore()/seed), charged to each rule's limiter
        # state on its next decision so a restored bucket does not hand out a fresh quota.
        """CREATE TABLE IF NOT EXISTS restored_usage (
             rule TEXT NOT NULL, period_start INTEGER NOT NULL, admitted INTEGER NOT NULL,
             PRIMARY KEY (rule, period_start))""",
    ),
}

_UPSERT_HEAD = """INSERT INTO rule_state (rule, s0, s1, s2, period_start, allowed, admitted, denied,
               shadow_denied, version, sent_version) VALUES """
_UPSERT_ROW = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_UPSERT_TAIL = """
             ON CONFLICT(rule) DO UPDATE SET s0 = excluded.s0, s1 = excluded.s1, s2 = excluded.s2,
               period_start = excluded.period_start, allowed = excluded.allowed,
               admitted = excluded.admitted, denied = excluded.denied,
               shadow_denied = excluded.shadow_denied, version = excluded.version"""
# One statement writes every changed row of a decision (11 bound values a row,
# 9 rows at most under SQLite storage's 100-parameter limit): each exec is a
# trip through the platform, so a three-rule decision pays one, not three.
_UPSERTS = {n: _UPSERT_HEAD + ", ".join([_UPSERT_ROW] * n) + _UPSERT_TAIL for n in range(1, 10)}

# Limiter state crosses as decimal text both ways. GCRA keeps ms x count (about 1e16 for
# 6000/hour), above 2^53: on Cloudflare a Python int that large becomes a JS BigInt, which
# ctx.storage.sql cannot bind, and an INTEGER that large reads back as a lossy double
# (workerd src/workerd/api/sql.c++). Text into the INTEGER columns is stored as an exact
# INTEGER; CAST(... AS TEXT) reads it back exactly. Found by tests/conformance; pinned by
# tests/gateway/test_edge_conformance.py.
_ROWS = ("SELECT rule, CAST(s0 AS TEXT) AS s0, CAST(s1 AS TEXT) AS s1, CAST(s2 AS TEXT) AS s2, "
         "period_start, allowed, admitted, denied, shadow_denied, version, sent_version FROM rule_state")
_CLOSE = ("INSERT INTO closed_usage (rule, period_start, allowed, admitted, denied, shadow_denied, version) "
          "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(rule, period_start) DO UPDATE SET "
          "allowed = excluded.allowed, admitted = excluded.admitted, denied = excluded.denied, "
          "shadow_denied = excluded.shadow_denied, version = excluded.version")
_ADD_RESTORED = ("INSERT INTO restored_usage (rule, period_start, admitted) VALUES (?, ?, ?) "
                 "ON CONFLICT(rule, period_start) DO UPDATE SET admitted = MAX(admitted, excluded.admitted)")


def _text(state: State | None) -> tuple:
    return (None, None, None) if state is None else (str(state[0]), str(state[1]), str(state[2]))


class RuleRow:
    """One rule_state row in Python, mutated by a decision and written back once."""

    __slots__ = ("rule", "state", "period_start", "allowed", "admitted", "denied", "shadow_denied",
                 "version", "sent_version")

    def __init__(self, rule: str, period: int) -> None:
        self.rule, self.state, self.period_start = rule, None, period
        self.allowed = self.admitted = self.denied = self.shadow_denied = 0
        self.version = self.sent_version = 0

    @classmethod
    def from_db(cls, d: dict) -> "RuleRow":
        row = cls(d["rule"], d["period_start"])
        row.state = None if d["s0"] is None else (int(d["s0"]), int(d["s1"]), int(d["s2"]))
        for f in ("allowed", "admitted", "denied", "shadow_denied", "version", "sent_version"):
            setattr(row, f, d[f])
        return row

    def usage(self, client: str) -> UsageRecord:
        return UsageRecord(client, self.rule, self.period_start, self.allowed, self.admitted, self.denied,
                           self.shadow_denied, self.version)


class RuleStore:
    """rule_state, closed_usage and restored_usage of one bucket, with the memory copy."""

    def __init__(self, sql: Sql) -> None:
        self.sql = sql
        migrate(sql, MIGRATIONS)
        self._rows: dict[str, RuleRow] = {}   # rule -> its row as stored (or as it would be: no row yet)
        self.restored = self._any_restored()  # restored usage waits to be charged (restore.py)

    def forget(self) -> None:
        """Drop the memory copy: rows were rewritten in storage, or a write may have failed."""
        self._rows.clear()

    # ------------------------------------------------------------ the decision's rows
    def load(self, names: list[str], period: int) -> dict[str, RuleRow]:
        cached = self._rows
        missing = [n for n in names if n not in cached]
        if missing:
            marks = ",".join("?" * len(missing))
            found = {d["rule"]: RuleRow.from_db(d) for d in
                     self.sql.rows(f"{_ROWS} WHERE rule IN ({marks})", *missing)}
            for n in missing:
                cached[n] = found.get(n) or RuleRow(n, period)
        return {n: cached[n] for n in names}

    def record(self, decision: Decision, rows: dict[str, RuleRow], cost: int, period: int) -> bool:
        """Count a decision in its rows and write the changed ones; True if any changed.

        Admitted: every rule counts it (a shadow rule that would deny counts that) and takes
        its new limiter state. Denied: only the rule that denied counts it; no state moves.
        """
        changed: list[RuleRow] = []
        if decision.allowed:
            for result in decision.results:
                row = rows[result.name]
                self._roll(row, period)
                if result.shadow and not result.allowed:
                    row.shadow_denied += 1
                else:
                    row.allowed += 1
                    row.admitted += cost
                    row.state = decision.new_states.get(result.name, row.state)
                changed.append(row)
        elif decision.denied_by is not None:
            row = rows[decision.denied_by]
            self._roll(row, period)
            row.denied += 1
            changed.append(row)
        self._write(changed)
        return bool(changed)

    def _roll(self, row: RuleRow, period: int) -> None:
        """Start a new accounting period; unsent counters of the old one wait in closed_usage."""
        if period <= row.period_start:
            return
        if row.version > row.sent_version:
            self.sql.run(_CLOSE, row.rule, row.period_start, row.allowed, row.admitted, row.denied,
                         row.shadow_denied, row.version)
        row.period_start = period
        row.allowed = row.admitted = row.denied = row.shadow_denied = 0

    def _write(self, rows: list[RuleRow]) -> None:
        for start in range(0, len(rows), 9):
            chunk = rows[start:start + 9]
            values: list = []
            for row in chunk:
                row.version += 1
                values += (row.rule, *_text(row.state), row.period_start, row.allowed, row.admitted,
                           row.denied, row.shadow_denied, row.version, row.sent_version)
            self.sql.run(_UPSERTS[len(chunk)], *values)

    def set_state(self, rule: str, state: State) -> None:
        """Store a limiter state outside a decision (restored usage charged, restore.py)."""
        self.sql.run("UPDATE rule_state SET s0 = ?, s1 = ?, s2 = ? WHERE rule = ?", *_text(state), rule)

    # ------------------------------------------------------------ reads for the outbox and admin
    def all_rows(self) -> dict[str, RuleRow]:
        return {d["rule"]: RuleRow.from_db(d) for d in self.sql.rows(f"{_ROWS} ORDER BY rule")}

    def unsent(self, client: str) -> list[UsageRecord]:
        """Every change the outbox has not confirmed: dirty rows, then closed periods."""
        out = [RuleRow.from_db(d).usage(client) for d in self.sql.rows(f"{_ROWS} WHERE version > sent_version")]
        out += [UsageRecord(client, d["rule"], d["period_start"], d["allowed"], d["admitted"], d["denied"],
                            d["shadow_denied"], d["version"])
                for d in self.sql.rows("SELECT * FROM closed_usage")]
        return out

    def has_unsent(self) -> bool:
        return self.sql.one("SELECT 1 AS x FROM rule_state WHERE version > sent_version "
                            "UNION ALL SELECT 1 FROM closed_usage LIMIT 1") is not None

    def closed(self) -> list[dict[str, Any]]:
        return [dict(d) for d in self.sql.rows("SELECT * FROM closed_usage ORDER BY rule, period_start")]

    def is_empty(self) -> bool:
        return self.sql.one("SELECT 1 AS x FROM rule_state UNION ALL SELECT 1 FROM closed_usage LIMIT 1") is None

    # ------------------------------------------------------------ rewrites (the memory copy is dropped)
    def mark_sent(self, records: list[UsageRecord]) -> None:
        """The outbox holds these versions: clear exactly them, keep anything newer."""
        self.forget()
        for rec in records:
            self.sql.run("UPDATE rule_state SET sent_version = MAX(sent_version, ?) WHERE rule = ?",
                         rec.version, rec.rule)
            self.sql.run("DELETE FROM closed_usage WHERE rule = ? AND period_start = ? AND version <= ?",
                         rec.rule, rec.period_start_ms, rec.version)

    def clear_states(self) -> int:
        """Forget every limiter state and restored usage (admin reset); returns the rules that had one."""
        n = len(self.sql.rows("SELECT rule FROM rule_state WHERE s0 IS NOT NULL"))
        self.forget()
        self.sql.run("UPDATE rule_state SET s0 = NULL, s1 = NULL, s2 = NULL")
        self.sql.run("DELETE FROM restored_usage")
        self.restored = False
        return n

    def put_stored(self, rec: UsageRecord) -> None:
        """A row as the store holds it: no limiter state, sent_version = version (nothing to send back)."""
        self.forget()
        self.sql.run(_UPSERTS[1], rec.rule, None, None, None, rec.period_start_ms, rec.allowed, rec.admitted,
                     rec.denied, rec.shadow_denied, rec.version, rec.version)

    # ------------------------------------------------------------ restored usage (restore.py)
    def add_restored(self, rule: str, period: int, admitted: int) -> None:
        self.sql.run(_ADD_RESTORED, rule, period, admitted)

    def restored_admitted(self, rule: str) -> list[tuple[int, int]]:
        """(period_start, admitted) restored for `rule`."""
        return [(r["period_start"], r["admitted"]) for r in
                self.sql.rows("SELECT period_start, admitted FROM restored_usage WHERE rule = ?", rule)]

    def drop_restored(self, rule: str) -> None:
        self.sql.run("DELETE FROM restored_usage WHERE rule = ?", rule)

    def recheck_restored(self) -> None:
        """`restored` again from storage: is any restored usage still waiting to be charged?"""
        self.restored = self._any_restored()

    def _any_restored(self) -> bool:
        return self.sql.one("SELECT 1 AS x FROM restored_usage LIMIT 1") is not None
