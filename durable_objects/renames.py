"""Renamed rules in one bucket: every name of a rule decides on one row.

Why a mapping and not a copy: during a gradual deploy one Worker version asks for
"burst" and the other for "requests" (previous_names = ["burst"]). Copying the
state once would give each version its own row, and the client up to both
limits at once. Instead, the first decision that names a rule with former names
records the alias (former -> current, in `meta.aliases`) and, if the current
name has no row yet, moves the former row's limiter state to it; from then on a
decision asking for a former name is decided on the current name's row, under
the limit that decision asked for, and answered under the name it asked for.
Usage is counted under the current name from then on (the store keeps the former
name's earlier hours as they were).

Warm decisions pay an identity check on the (cached) rules tuple and nothing more.
"""
from __future__ import annotations

import json
from typing import Any

from durable_objects.rule_store import RuleStore
from durable_objects.sql import Sql
from src.tollgate import clock
from src.tollgate.decision import Decision
from src.tollgate.snapshots import UsageRecord
from src.tollgate.usage import period_start

_META = "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value"


class Renames:
    def __init__(self, sql: Sql, store: RuleStore, client: str) -> None:
        self.sql, self.store, self.client = sql, store, client
        row = sql.one("SELECT value FROM meta WHERE key = 'aliases'")
        self.aliases: dict[str, str] = json.loads(row["value"]) if row else {}
        self._seen: Any = None
        self._mapped: tuple = (None, None)     # (rules as asked, rules as decided) for the last rules seen

    def canonical(self, rules: tuple) -> tuple:
        """`rules` with each former name replaced by its current name (the same tuple if none)."""
        if rules is self._seen:
            return self._mapped[1]
        self._seen = rules
        if any(r.previous_names for r in rules):
            self._record(rules)
        mapped = tuple(r._replace(name=self._current(r.name)) if r.name in self.aliases else r for r in rules)
        if len({r.name for r in mapped}) != len(mapped):
            mapped = rules              # two names of one rule in one request: decide them apart
        self._mapped = (rules, mapped if mapped != rules else rules)
        return self._mapped[1]

    def answered_as(self, decision: Decision, asked: tuple, decided: tuple) -> Decision:
        """The decision under the names the caller asked for."""
        back = {d.name: a.name for a, d in zip(asked, decided)}
        results = tuple(r._replace(name=back.get(r.name, r.name)) for r in decision.results)
        by = back.get(decision.denied_by, decision.denied_by) if decision.denied_by else None
        return decision._replace(results=results, denied_by=by)

    def _current(self, name: str) -> str:
        for _ in range(8):              # aliases may chain (renamed twice); bounded
            if name not in self.aliases:
                return name
            name = self.aliases[name]
        return name

    def _record(self, rules: tuple) -> None:
        changed = False
        rows = None
        for rule in rules:
            for old in rule.previous_names:
                if self.aliases.get(old) == rule.name:
                    continue
                self.aliases[old] = rule.name
                self.aliases.pop(rule.name, None)   # renamed back: the current name is no alias
                changed = True
                rows = rows if rows is not None else self.store.all_rows()
                if rule.name not in rows and old in rows and rows[old].state is not None:
                    now = clock.now_ms()
                    self.store.put_stored(UsageRecord(self.client, rule.name, period_start(now), 0, 0, 0, 0, 0))
                    self.store.set_state(rule.name, rows[old].state)
                    rows = self.store.all_rows()
        if changed:
            self.sql.run(_META, "aliases", json.dumps(self.aliases, separators=(",", ":")))
