"""durable_objects/rule_store.py: the bucket's schema, migrations, and rows in and out."""
from __future__ import annotations

from durable_objects.rule_store import RuleStore
from durable_objects.sql import Sql
from src.tollgate import clock
from src.tollgate.decision import Decision, RuleResult
from src.tollgate.usage import ACCOUNTING_PERIOD_MS
from tests.state.fakes import FakeStorage, make_bucket
from tests.state.support import MINUTE, PERIOD0, T0, Clock, decide, rows


def test_schema_version_is_recorded_and_migration_is_idempotent():
    storage = FakeStorage()
    make_bucket(storage=storage)
    make_bucket(storage=storage)
    rows_ = storage.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchall()
    from durable_objects.rule_store import MIGRATIONS
    assert [r[0] for r in rows_] == [str(max(MIGRATIONS))]


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
    assert storage.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(max(MIGRATIONS))
    assert storage.db.execute("SELECT COUNT(*) FROM sqlite_master WHERE name='restored_usage'").fetchone()[0] == 1
    assert (rows(new)["minute"]["allowed"], rows(new)["minute"]["version"]) == (2, 2)


# ------------------------------------------------------------------ RuleStore on its own
def admitted(rule: str, state) -> Decision:
    return Decision(True, None, 0, (RuleResult(rule, True, False, 0, 0, 0),), {rule: state})


def denied(rule: str) -> Decision:
    return Decision(False, rule, 1000, (RuleResult(rule, False, False, 0, 1000, 1000),), {})


def store_on(storage: FakeStorage) -> RuleStore:
    return RuleStore(Sql(storage))


def test_a_limiter_state_beyond_2_53_is_stored_as_an_exact_integer():
    storage = FakeStorage()
    big = (2 ** 60 + 7, 3, -(2 ** 55) - 1)      # GCRA keeps ms x count: far beyond a double
    store = store_on(storage)
    rows_ = store.load(["r"], PERIOD0)
    assert store.record(admitted("r", big), rows_, 2, PERIOD0)
    again = store_on(storage).load(["r"], PERIOD0)["r"]   # a new instance reads storage
    assert again.state == big and (again.allowed, again.admitted, again.version) == (1, 2, 1)
    store.checkpoint()                          # from the journal into rule_state
    kinds = storage.db.execute("SELECT typeof(s0), typeof(s1), typeof(s2) FROM rule_state").fetchone()
    assert tuple(kinds) == ("integer", "integer", "integer")


def test_a_denial_counts_only_on_the_rule_that_denied_and_moves_no_state():
    store = store_on(FakeStorage())
    rows_ = store.load(["a", "b"], PERIOD0)
    store.record(Decision(True, None, 0, (RuleResult("a", True, False, 0, 0, 0), RuleResult("b", True, False, 0, 0, 0)),
                          {"a": (1, 1, 1), "b": (2, 2, 2)}), rows_, 1, PERIOD0)
    store.record(denied("b"), rows_, 1, PERIOD0)
    a, b = store.all_rows()["a"], store.all_rows()["b"]
    assert (a.allowed, a.denied, a.version, a.state) == (1, 0, 1, (1, 1, 1))
    assert (b.allowed, b.denied, b.version, b.state) == (1, 1, 2, (2, 2, 2))


def test_a_new_period_keeps_the_unsent_counters_of_the_old_one_in_closed_usage():
    store = store_on(FakeStorage())
    rows_ = store.load(["r"], PERIOD0)
    store.record(admitted("r", (1, 1, 1)), rows_, 1, PERIOD0)
    store.record(admitted("r", (2, 2, 2)), rows_, 1, PERIOD0 + ACCOUNTING_PERIOD_MS)
    assert [(c["period_start"], c["allowed"], c["version"]) for c in store.closed()] == [(PERIOD0, 1, 1)]
    unsent = sorted((u.period_start_ms, u.allowed, u.version) for u in store.unsent("c"))
    assert unsent == [(PERIOD0, 1, 1), (PERIOD0 + ACCOUNTING_PERIOD_MS, 1, 2)]


def test_mark_sent_clears_exactly_the_confirmed_versions():
    store = store_on(FakeStorage())
    rows_ = store.load(["r"], PERIOD0)
    store.record(admitted("r", (1, 1, 1)), rows_, 1, PERIOD0)
    sent = store.unsent("c")
    store.record(admitted("r", (2, 2, 2)), store.load(["r"], PERIOD0), 1, PERIOD0)  # lands while sending
    store.mark_sent(sent)
    assert store.has_unsent() and [u.version for u in store.unsent("c")] == [2]
    store.mark_sent(store.unsent("c"))
    assert not store.has_unsent() and store.unsent("c") == []


def test_the_memory_copy_answers_until_forgotten():
    storage = FakeStorage()
    store = store_on(storage)
    store.record(admitted("r", (1, 1, 1)), store.load(["r"], PERIOD0), 1, PERIOD0)
    store.checkpoint()                                          # memory and rule_state agree
    storage.db.execute("UPDATE rule_state SET allowed = 40")   # behind the store's back
    assert store.load(["r"], PERIOD0)["r"].allowed == 1          # warm: no read
    store.forget()
    assert store.load(["r"], PERIOD0)["r"].allowed == 40


def test_clear_states_keeps_usage_and_counts_the_rules_it_cleared():
    store = store_on(FakeStorage())
    rows_ = store.load(["a", "b"], PERIOD0)
    store.record(admitted("a", (1, 1, 1)), rows_, 1, PERIOD0)
    store.record(denied("b"), rows_, 1, PERIOD0)                 # b has a row but no state
    assert store.clear_states() == 1
    assert store.clear_states() == 0
    a = store.all_rows()["a"]
    assert a.state is None and a.allowed == 1 and store.has_unsent()
