"""The SQL text of a bucket's rule_state, closed_usage and restored_usage statements.

Only durable_objects/rule_store.py runs them; they live here so that module keeps to
its one job (the rows in memory and when they reach storage) within its size.
"""
from __future__ import annotations

UPSERT_HEAD = """INSERT INTO rule_state (rule, s0, s1, s2, period_start, allowed, admitted, denied,
               shadow_denied, version, sent_version) VALUES """
UPSERT_ROW = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
UPSERT_TAIL = """
             ON CONFLICT(rule) DO UPDATE SET s0 = excluded.s0, s1 = excluded.s1, s2 = excluded.s2,
               period_start = excluded.period_start, allowed = excluded.allowed,
               admitted = excluded.admitted, denied = excluded.denied,
               shadow_denied = excluded.shadow_denied, version = excluded.version,
               sent_version = MAX(rule_state.sent_version, excluded.sent_version)"""
# One statement writes every changed row of a checkpoint (11 bound values a row,
# 9 rows at most under SQLite storage's 100-parameter limit): each exec is a
# trip through the platform, so three rules pay one, not three.
UPSERTS = {n: UPSERT_HEAD + ", ".join([UPSERT_ROW] * n) + UPSERT_TAIL for n in range(1, 10)}

# Limiter state crosses as decimal text both ways. GCRA keeps ms x count (about 1e16 for
# 6000/hour), above 2^53: on Cloudflare a Python int that large becomes a JS BigInt, which
# ctx.storage.sql cannot bind, and an INTEGER that large reads back as a lossy double
# (workerd src/workerd/api/sql.c++). Text into the INTEGER columns is stored as an exact
# INTEGER; CAST(... AS TEXT) reads it back exactly. Found by tests/conformance; pinned by
# tests/gateway/test_edge_conformance.py.
ROWS = ("SELECT rule, CAST(s0 AS TEXT) AS s0, CAST(s1 AS TEXT) AS s1, CAST(s2 AS TEXT) AS s2, "
         "period_start, allowed, admitted, denied, shadow_denied, version, sent_version FROM rule_state")
CLOSE = ("INSERT INTO closed_usage (rule, period_start, allowed, admitted, denied, shadow_denied, version) "
          "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(rule, period_start) DO UPDATE SET "
          "allowed = excluded.allowed, admitted = excluded.admitted, denied = excluded.denied, "
          "shadow_denied = excluded.shadow_denied, version = excluded.version")
ADD_RESTORED = ("INSERT INTO restored_usage (rule, period_start, admitted) VALUES (?, ?, ?) "
                 "ON CONFLICT(rule, period_start) DO UPDATE SET admitted = MAX(admitted, excluded.admitted)")
