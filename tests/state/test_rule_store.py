"""durable_objects/rule_store.py: the bucket's schema, migrations, and rows in and out."""
from __future__ import annotations

from src.tollgate import clock
from src.tollgate.usage import ACCOUNTING_PERIOD_MS
from tests.state.fakes import FakeStorage, make_bucket
from tests.state.support import MINUTE, T0, Clock, decide, rows


def test_schema_version_is_recorded_and_migration_is_idempotent():
    storage = FakeStorage()
    make_bucket(storage=storage)
    make_bucket(storage=storage)
    rows_ = storage.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchall()
    assert [r[0] for r in rows_] == ["2"]


def test_a_v1_object_is_migrated_in_place_keeping_its_state():
    from durable_objects.rule_store import MIGRATIONS
    storage = FakeStorage()  # storage as an object deployed with schema 1 left it
    storage.db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    for statement in MIGRATIONS[1]:
        storage.db.execute(statement)
    storage.db.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    storage.db.execute("INSERT INTO rule_state VALUES ('minute', NULL, NULL, NULL, ?, 1, 1, 0, 0, 1, 1)",
                       (T0 - T0 % ACCOUNTING_PERIOD_MS,))
    with clock.use(Clock()):
        new = make_bucket(storage=storage)
        decide(new, [MINUTE])
    assert storage.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == "2"
    assert storage.db.execute("SELECT COUNT(*) FROM sqlite_master WHERE name='restored_usage'").fetchone()[0] == 1
    assert (rows(new)["minute"]["allowed"], rows(new)["minute"]["version"]) == (2, 2)
