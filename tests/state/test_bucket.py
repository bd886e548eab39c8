"""ClientBucket.decide, the request path: atomic, all or nothing, one statement when warm."""
from __future__ import annotations

import pytest

from src.tollgate import clock
from tests.state.fakes import FakeStorage, make_bucket
from tests.state.support import BURST, MINUTE, SHADOW, Clock, decide, rows, run


def test_admits_up_to_the_limit_and_state_survives_a_new_instance():
    clk = Clock()
    storage = FakeStorage()
    with clock.use(clk):
        b = make_bucket(storage=storage)
        assert [decide(b, [MINUTE]).allowed for _ in range(3)] == [True] * 3
        again = make_bucket(storage=storage)  # object evicted and recreated: same storage
        d = decide(again, [MINUTE])
    assert not d.allowed and d.denied_by == "minute" and d.retry_after_ms > 0
    r = rows(again)["minute"]
    assert (r["allowed"], r["admitted"], r["denied"]) == (3, 3, 1)


def test_denied_request_writes_no_row_and_keeps_every_limiter_state():
    clk = Clock()
    with clock.use(clk):
        b = make_bucket()
        for _ in range(3):
            assert decide(b, [BURST, MINUTE]).allowed
        before = rows(b)
        b.ctx.storage.log.clear()
        d = decide(b, [BURST, MINUTE])
    assert not d.allowed and d.denied_by == "minute"
    assert b.ctx.storage.writes() == []     # the denial is counted in memory (journal.py)
    after = rows(b)
    for name in ("burst", "minute"):
        assert [after[name][s] for s in ("s0", "s1", "s2")] == [before[name][s] for s in ("s0", "s1", "s2")]
    assert after["burst"] == before["burst"]  # the rule that admitted is not charged
    assert after["minute"]["denied"] == before["minute"]["denied"] + 1
    assert after["minute"]["version"] == before["minute"]["version"] + 1


def test_a_warm_bucket_decides_with_one_statement_and_a_new_instance_sees_the_same_state():
    clk = Clock()
    storage = FakeStorage()
    with clock.use(clk):
        b = make_bucket(storage=storage)
        assert decide(b, [BURST, MINUTE]).allowed          # cold: reads its rows once
        storage.log.clear()
        d = decide(b, [BURST, MINUTE])
        assert d.allowed
        assert len(storage.log) == 1 and storage.log[0].startswith("INSERT INTO journal")
        assert storage.db.execute("SELECT COUNT(*) FROM journal").fetchone()[0] == 1   # one row
        fresh = make_bucket(storage=storage)                # evicted: reads what the warm one wrote
        assert [r.remaining for r in decide(fresh, [BURST, MINUTE]).results] == \
               [r.remaining - 1 for r in d.results]


def test_a_failed_write_drops_the_rows_it_had_changed_in_memory():
    clk = Clock()
    storage = FakeStorage()
    with clock.use(clk):
        b = make_bucket(storage=storage)
        assert decide(b, [MINUTE]).allowed
        real_exec = storage.sql.exec

        def failing(query, *args):
            if query.lstrip().upper().startswith("INSERT INTO JOURNAL"):
                raise RuntimeError("SQLITE_FULL")
            return real_exec(query, *args)
        storage.sql.exec = failing
        with pytest.raises(RuntimeError):
            decide(b, [MINUTE])                             # counted in memory, never stored
        storage.sql.exec = real_exec
        # the failed request consumed nothing: two more fit under the limit of 3, not one
        assert [decide(b, [MINUTE]).allowed for _ in range(3)] == [True, True, False]
    assert (rows(b)["minute"]["allowed"], rows(b)["minute"]["denied"]) == (3, 1)


def test_clock_read_once_per_decision_and_cost_counts_admitted_units():
    clk = Clock()
    with clock.use(clk):
        b = make_bucket()
        clk.reads = 0
        d = decide(b, [BURST, MINUTE], cost=2)
        assert clk.reads == 1
    assert d.allowed
    assert rows(b)["burst"]["admitted"] == 2 and rows(b)["burst"]["allowed"] == 1


def test_shadow_rule_counts_would_be_denials_without_denying():
    with clock.use(Clock()):
        b = make_bucket()
        results = [decide(b, [MINUTE, SHADOW]) for _ in range(3)]
    assert all(d.allowed for d in results)
    s = rows(b)["shadow"]
    assert (s["allowed"], s["shadow_denied"]) == (1, 2)


def test_bad_payload_names_the_problem():
    b = make_bucket()
    with pytest.raises(ValueError, match="cost"):
        run(b.decide('{"v":1,"cost":-1,"rules":[]}'))
    with pytest.raises(ValueError, match="algorithm"):
        run(b.decide('{"v":1,"cost":1,"rules":[["x","nope",1,1,1,0,"open"]]}'))
