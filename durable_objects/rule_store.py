"""A ClientBucket's own SQLite: schema, migrations, and every statement on its tables.

Why one owner: the decision, the outbox push, admin and restore all touch the
same rows; keeping their SQL here means one place knows the columns, the
decimal-text rule for limiter state and the in-memory copy that must be
dropped whenever rows are rewritten behind it.

The memory copy: this instance is the only writer of its storage (one instance
per object, one event at a time), so a row read or written once stays true
until this instance changes it. A warm bucket decides without reading; an
admitted decision writes one row, the journal (durable_objects/journal.py), a
denied one nothing; readers lay the journaled rows over rule_state in memory.
"""
from __future__ import annotations

from typing import Any

from durable_objects import journal, rule_sql
from durable_objects.rule_schema import MIGRATIONS
from durable_objects.restored_rows import RestoredUsage
from durable_objects.rule_row import RuleRow, _text
from durable_objects.sql import Sql, migrate
from src.tollgate.algorithms import State
from src.tollgate.decision import Decision
from src.tollgate.snapshots import UsageRecord

# The schema's numbered steps live in durable_objects/rule_schema.py (MIGRATIONS, re-exported).
# The statements on rule_state and closed_usage live in durable_objects/rule_sql.py.
_UPSERTS, _ROWS, _CLOSE = rule_sql.UPSERTS, rule_sql.ROWS, rule_sql.CLOSE


class RuleStore(RestoredUsage):
    """rule_state, closed_usage and restored_usage of one bucket, with the memory copy."""

    def __init__(self, sql: Sql) -> None:
        self.sql = sql
        migrate(sql, MIGRATIONS)
        self._rows: dict[str, RuleRow] = {}   # rule -> its row as stored (or as it would be: no row yet)
        self._dirty: set[str] = set()         # rows newer in memory than in rule_state
        self._journaled = False               # the journal row holds some of them
        self._unsaved = False                 # memory holds counts no storage row holds (denials)
        self._journal_read = False            # the journal was laid over the memory copy
        self.restored = self._any_restored()  # restored usage waits to be charged (restore.py)

    def forget(self) -> None:
        """Drop the memory copy: rows are about to be rewritten in storage. Saves it first."""
        try:
            self.checkpoint()
        finally:
            self.discard()

    def discard(self) -> None:
        """Drop the memory copy without saving: a write may have failed mid-decision. The
        next load reads rule_state and the journal again (what storage holds)."""
        self._rows.clear()
        self._dirty.clear()
        self._journaled = self._journal_read = self._unsaved = False

    def checkpoint(self) -> None:
        """Bring rule_state up to date with memory and empty the journal: before rows are
        rewritten behind the memory copy (reset, restore), or when the journal grows."""
        if not self._journal_read:
            self._read_journal()
        if self._dirty:
            self._upsert([self._rows[n] for n in sorted(self._dirty)])
            self._dirty.clear()
        if self._journaled:
            self.sql.run(journal.CLEAR)
            self._journaled = False
        self._unsaved = False

    def _read_journal(self) -> None:
        self._journal_read = True
        found = self.sql.one(journal.READ)
        if found is None:
            return
        for row in journal.decode(found["rows"], RuleRow):
            self._rows[row.rule] = row
            self._dirty.add(row.rule)
        self._journaled = True

    # ------------------------------------------------------------ the decision's rows
    def load(self, names: list[str], period: int) -> dict[str, RuleRow]:
        if not self._journal_read:
            self._read_journal()
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
        """Count a decision in its rows; True if any changed (the alarm must push them).

        Admitted: every rule counts it (a shadow rule that would deny counts that) and takes
        its new limiter state; one row is written, the journal. Denied: only the rule that
        denied counts it, in memory; no state moves and nothing is written (journal.py says
        what a crash can lose).
        """
        try:
            return self._count(decision, rows, cost, period)
        except BaseException:
            self.discard()      # memory may hold what storage does not: read storage again
            raise

    def _count(self, decision: Decision, rows: dict[str, RuleRow], cost: int, period: int) -> bool:
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
                self._touch(row)
            self._write_journal()
            return True
        if decision.denied_by is not None:
            row = rows[decision.denied_by]
            self._roll(row, period)
            row.denied += 1
            self._touch(row)
            return True
        return False

    def add_denied(self, counts: dict[str, int], period: int) -> bool:
        """Denials an isolate answered itself (worker/deny_cache.py), counted in memory like ours."""
        rows = self.load(list(counts), period)
        for name, n in counts.items():
            row = rows[name]
            self._roll(row, period)
            row.denied += n
            self._touch(row)
        return bool(counts)

    def add_leased(self, rows: dict[str, RuleRow], states: dict[str, State], spent: tuple, period: int,
                   write: bool) -> bool:
        """Lease states (granted or taken back) and what isolates admitted from leases (`spent`:
        rule, requests, units: usage counts admitted units, never granted ones). `write`: keep
        them now, one journal row; else the decision's own journal write takes them along."""
        for name, state in states.items():
            rows[name].state = state
            self._touch(rows[name])
        for name, requests, units in spent:
            row = rows.get(name) or self.load([name], period)[name]
            self._roll(row, period)
            row.allowed, row.admitted = row.allowed + requests, row.admitted + units
            self._touch(row)
        if write and (states or spent):
            self._write_journal()
        return bool(states or spent)

    def _touch(self, row: RuleRow) -> None:
        row.version += 1
        self._dirty.add(row.rule)
        self._unsaved = True

    def _write_journal(self) -> None:
        self.sql.write(journal.WRITE, journal.encode(self._rows[n] for n in self._dirty))
        self._journaled = True
        self._unsaved = False

    def _roll(self, row: RuleRow, period: int) -> None:
        """Start a new accounting period; unsent counters of the old one wait in closed_usage."""
        if period <= row.period_start:
            return
        if row.version > row.sent_version:
            self.sql.run(_CLOSE, row.rule, row.period_start, row.allowed, row.admitted, row.denied,
                         row.shadow_denied, row.version)
        row.period_start = period
        row.allowed = row.admitted = row.denied = row.shadow_denied = 0

    def _upsert(self, rows: list[RuleRow]) -> None:
        for start in range(0, len(rows), 9):
            chunk = rows[start:start + 9]
            values: list = []
            for row in chunk:
                values += (row.rule, *_text(row.state), row.period_start, row.allowed, row.admitted,
                           row.denied, row.shadow_denied, row.version, row.sent_version)
            self.sql.run(_UPSERTS[len(chunk)], *values)

    def set_state(self, rule: str, state: State) -> None:
        """A limiter state set outside a decision (restored usage charged, restore.py): one journal row."""
        row = self._rows.get(rule)
        if row is None:
            self.sql.run("UPDATE rule_state SET s0 = ?, s1 = ?, s2 = ? WHERE rule = ?", *_text(state), rule)
            return
        row.state = state
        self._dirty.add(rule)
        self._write_journal()

    # ------------------------------------------------------------ reads for the outbox and admin
    # Memory is authoritative for the journaled rows: readers overlay them on rule_state and
    # write nothing, so the alarm's push costs the journal row, not a row per rule.
    def all_rows(self) -> dict[str, RuleRow]:
        if not self._journal_read:
            self._read_journal()
        found = {d["rule"]: RuleRow.from_db(d) for d in self.sql.rows(f"{_ROWS} ORDER BY rule")}
        for name in self._dirty:
            found[name] = self._rows[name]
        return dict(sorted(found.items()))

    def unsent(self, client: str) -> list[UsageRecord]:
        """Every change the outbox has not confirmed: changed rows, then closed periods. Counts
        only memory holds are written first (the journal row): the outbox never sees a version
        that storage could lose, so the next write's version is always above it."""
        if self._unsaved:
            self._write_journal()
        out = [r.usage(client) for r in self.all_rows().values() if r.version > r.sent_version]
        out += [UsageRecord(client, d["rule"], d["period_start"], d["allowed"], d["admitted"], d["denied"],
                            d["shadow_denied"], d["version"])
                for d in self.sql.rows("SELECT * FROM closed_usage")]
        return out

    def has_unsent(self) -> bool:
        if any(r.version > r.sent_version for r in self.all_rows().values()):
            return True
        return self.sql.one("SELECT 1 AS x FROM closed_usage LIMIT 1") is not None

    def closed(self) -> list[dict[str, Any]]:
        return [dict(d) for d in self.sql.rows("SELECT * FROM closed_usage ORDER BY rule, period_start")]

    def is_empty(self) -> bool:
        if not self._journal_read:
            self._read_journal()
        if self._dirty:
            return False
        return self.sql.one("SELECT 1 AS x FROM rule_state UNION ALL SELECT 1 FROM closed_usage LIMIT 1") is None

    # ------------------------------------------------------------ rewrites
    def mark_sent(self, records: list[UsageRecord]) -> None:
        """The outbox holds these versions: clear exactly them, keep anything newer. A row in
        memory takes its sent_version there and reaches storage with one journal row (a
        checkpoint once the journal holds more than one statement's rows); a crash before
        that only re-sends versions the outbox already has, which it ignores."""
        if not self._journal_read:
            self._read_journal()
        changed = False
        for rec in records:
            row = self._rows.get(rec.rule)
            if row is None:
                self.sql.run("UPDATE rule_state SET sent_version = MAX(sent_version, ?) WHERE rule = ?",
                             rec.version, rec.rule)
            elif rec.version > row.sent_version:
                row.sent_version = rec.version
                self._dirty.add(rec.rule)
                changed = True
            self.sql.run("DELETE FROM closed_usage WHERE rule = ? AND period_start = ? AND version <= ?",
                         rec.rule, rec.period_start_ms, rec.version)
        if changed:
            if len(self._dirty) > 9:
                self.checkpoint()
            else:
                self._write_journal()

    def clear_states(self) -> int:
        """Forget every limiter state and restored usage (admin reset); returns the rules that had one."""
        self.forget()
        n = len(self.sql.rows("SELECT rule FROM rule_state WHERE s0 IS NOT NULL"))
        self.sql.run("UPDATE rule_state SET s0 = NULL, s1 = NULL, s2 = NULL")
        self.sql.run("DELETE FROM restored_usage")
        self.restored = False
        return n

    def put_stored(self, rec: UsageRecord) -> None:
        """A row as the store holds it: no limiter state, sent_version = version (nothing to send back)."""
        self.forget()
        self.sql.run(_UPSERTS[1], rec.rule, None, None, None, rec.period_start_ms, rec.allowed, rec.admitted,
                     rec.denied, rec.shadow_denied, rec.version, rec.version)
