"""The restored_usage table of a bucket: usage from restore()/seed waiting to be charged.

A mixin of RuleStore (durable_objects/rule_store.py), kept apart so that module stays one
job within its size; `self.sql` and `self.restored` are RuleStore's.
"""
from __future__ import annotations

from durable_objects.rule_sql import ADD_RESTORED


class RestoredUsage:
    sql: object
    restored: bool

    def add_restored(self, rule: str, period: int, admitted: int) -> None:
        self.sql.run(ADD_RESTORED, rule, period, admitted)

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
