"""Durable Objects on CPython: namespaces and stubs, per-object SQLite storage, alarms."""
