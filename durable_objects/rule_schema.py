"""A ClientBucket's schema: every table its storage has ever had, as numbered steps.

Why its own module: the schema is one owner's (durable_objects/rule_store.py applies it in
its constructor), and each step is kept for ever, so the list only grows.
"""
from __future__ import annotations

from durable_objects import journal, slots

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
    # The decision journal (durable_objects/journal.py): one row written per admitted decision.
    3: (journal.SCHEMA,),
    # Concurrency slots (durable_objects/slots.py): one row per request in flight.
    4: (slots.SCHEMA,),
}
