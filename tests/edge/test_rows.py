"""Strict mode writes fewer rows (issue 13): one row per admitted decision, none per denied
one, admitted usage exact after a crash, and the denied counts a crash can lose bounded."""
from __future__ import annotations

from durable_objects.rule_store import RuleStore
from src.tollgate import clock
from tests.state.fakes import FakeStorage, make_bucket
from tests.state.support import BURST, DAILY, MINUTE, Clock, decide, run

RULES = [BURST, MINUTE, DAILY]       # the sample config's shape: three rules on one request


def rows_written(storage: FakeStorage, action) -> int:
    """Rows SQLite changed while `action` ran (what Durable Object billing counts)."""
    before = storage.db.total_changes
    action()
    return storage.db.total_changes - before


def stored_counts(storage: FakeStorage, name: str = "client-a") -> dict[str, tuple[int, int, int]]:
    """(allowed, admitted, denied) per rule as a new instance over `storage` reads them: what
    survives a SIGKILL (the old instance's memory is gone, nothing was flushed for it)."""
    fresh = make_bucket(name, storage=storage)
    return {n: (r.allowed, r.admitted, r.denied) for n, r in fresh.store.all_rows().items()}


def test_an_admitted_three_rule_decision_writes_one_row_and_a_denied_one_none():
    storage = FakeStorage()
    with clock.use(Clock()):
        b = make_bucket(storage=storage)
        decide(b, RULES)                                    # cold: creates the journal row
        admitted = [rows_written(storage, lambda: decide(b, RULES)) for _ in range(2)]
        assert not decide(b, RULES).allowed                 # MINUTE admits 3 a minute
        denied = [rows_written(storage, lambda: decide(b, RULES)) for _ in range(3)]
    assert admitted == [1, 1] and denied == [0, 0, 0]


def test_admitted_usage_is_exact_after_a_crash_without_any_checkpoint():
    storage = FakeStorage()
    with clock.use(Clock()):
        b = make_bucket(storage=storage)
        answers = [decide(b, RULES, cost=1).allowed for _ in range(4)]
        assert answers == [True, True, True, False]         # MINUTE admits 3
        assert storage.db.execute("SELECT COUNT(*) FROM rule_state").fetchone()[0] == 0  # only the journal
        counts = stored_counts(storage)
    assert {n: c[:2] for n, c in counts.items()} == {"burst": (3, 3), "minute": (3, 3), "daily": (3, 3)}


def test_a_crash_loses_only_the_denials_since_the_last_write_and_a_push_saves_them():
    storage = FakeStorage()
    clk = Clock()
    with clock.use(clk):
        b = make_bucket(storage=storage)
        for _ in range(5):
            decide(b, [MINUTE])                             # 3 admitted, 2 denied
        assert stored_counts(storage)["minute"] == (3, 3, 0)    # crash now: the 2 denials are lost
        run(b.alarm())                                      # the push checkpoints first
        assert stored_counts(storage)["minute"] == (3, 3, 2)
        decide(b, [MINUTE])                                 # denied again, in memory only
    assert stored_counts(storage)["minute"] == (3, 3, 2)


def test_the_denied_counts_ride_on_the_next_admitted_decisions_row():
    storage = FakeStorage()
    clk = Clock()
    with clock.use(clk):
        b = make_bucket(storage=storage)
        for _ in range(5):
            decide(b, [MINUTE, DAILY])                      # 3 admitted, 2 denied by minute
        clk.t += 60_000                                     # the next minute
        assert decide(b, [MINUTE, DAILY]).allowed
    assert stored_counts(storage)["minute"] == (4, 4, 2)


def test_a_version_the_outbox_accepted_is_never_reused_after_a_crash():
    """The push writes what only memory holds (a denial's count and version) before it sends,
    so after a crash the next write's version is above every version the outbox has seen:
    its record is taken, never dropped as old."""
    storage = FakeStorage()
    clk = Clock()
    with clock.use(clk):
        b = make_bucket(storage=storage)
        for _ in range(4):
            decide(b, [MINUTE])                             # 3 admitted, the 4th denied: memory only
        run(b.alarm())
        assert b.store.unsent("client-a") == []             # confirmed
        seen = b.store.all_rows()["minute"].version
        again = make_bucket(storage=storage)                # the old instance crashed
        assert again.store.all_rows()["minute"].version == seen and not again.store.has_unsent()
        clk.t += 60_000
        decide(again, [MINUTE])
        pending = again.pending()
    assert [(u.allowed, u.denied, u.version > seen) for u in pending] == [(4, 1, True)]


def test_the_alarms_push_writes_one_row_or_two_not_two_per_rule():
    storage = FakeStorage()
    with clock.use(Clock()):
        b = make_bucket(storage=storage)
        for _ in range(3):
            decide(b, RULES)
        decide(b, RULES)                                    # denied by MINUTE: memory only
        pushed = rows_written(storage, lambda: run(b.alarm()))
        assert stored_counts(storage)["minute"] == (3, 3, 1)
    assert pushed <= 2, pushed                              # the denial's journal row, the confirmation's


def test_a_failed_journal_write_leaves_memory_as_storage_is():
    storage = FakeStorage()
    with clock.use(Clock()):
        b = make_bucket(storage=storage)
        decide(b, [MINUTE])
        store: RuleStore = b.store
        real = storage.sql.exec

        def failing(query, *args):
            if query.lstrip().upper().startswith("INSERT INTO JOURNAL"):
                raise RuntimeError("SQLITE_FULL")
            return real(query, *args)
        storage.sql.exec = failing
        try:
            decide(b, [MINUTE])
        except RuntimeError:
            pass
        storage.sql.exec = real
        assert store.all_rows()["minute"].allowed == 1
