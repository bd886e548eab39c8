"""The one owner of the D1 `known_keys` table's statements (schema in
migrations/0002_known_keys.sql): the Worker's lookup and scripts/keys' writes
use these, so the SQL and its meaning live in one place."""
from __future__ import annotations

from typing import Any, NamedTuple

from src.tollgate.usage_table import result_rows

LOOKUP = "SELECT plan FROM known_keys WHERE key_hash = ? AND revoked_ms IS NULL"
ADD = ("INSERT INTO known_keys (key_hash, label, plan, created_ms, revoked_ms) VALUES (?, ?, ?, ?, NULL) "
       "ON CONFLICT (key_hash) DO UPDATE SET label = excluded.label, plan = excluded.plan, revoked_ms = NULL")
REVOKE = "UPDATE known_keys SET revoked_ms = ? WHERE key_hash = ? AND revoked_ms IS NULL RETURNING key_hash"
LIST = "SELECT key_hash, label, plan, created_ms, revoked_ms FROM known_keys ORDER BY created_ms, key_hash"


class KnownKey(NamedTuple):
    plan: str | None      # selects [vars.TOLLGATE.plans.<plan>]


def lookup_result(result: Any) -> KnownKey | None:
    """A LOOKUP `all()` result: the key's row, or None when the key is unknown or revoked."""
    rows = result_rows(result)
    if not rows:
        return None
    plan = rows[0].get("plan")
    return KnownKey(str(plan) if plan not in (None, "") else None)
