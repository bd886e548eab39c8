"""durable_objects/bucket_admin.py: inspect (admin GET) and reset (admin DELETE)."""
from __future__ import annotations

import json

from src.tollgate import clock
from src.tollgate.usage import ACCOUNTING_PERIOD_MS
from src.tollgate.wire import encode_decide
from tests.state.fakes import make_bucket
from tests.state.support import BURST, MINUTE, Clock, decide, rows, run


def test_reset_forgets_limiter_state_but_keeps_usage():
    with clock.use(Clock()):
        b = make_bucket()
        for _ in range(3):
            decide(b, [MINUTE])
        assert not decide(b, [MINUTE]).allowed
        out = json.loads(run(b.reset()))
        assert out["reset_rules"] == 1
        assert decide(b, [MINUTE]).allowed
    r = rows(b)["minute"]
    assert (r["allowed"], r["denied"]) == (4, 1)


def test_inspect_reports_usage_and_remaining():
    with clock.use(Clock()):
        b = make_bucket()
        decide(b, [MINUTE], cost=2)
        info = json.loads(run(b.inspect(encode_decide([MINUTE], 0))))
    m = info["rules"]["minute"]
    assert info["client"] == "client-a"
    assert (m["allowed"], m["admitted"], m["remaining"]) == (1, 2, 1)
    assert info["unsent"] == 1


def test_inspect_shows_rules_never_hit_with_their_full_quota_and_the_closed_periods():
    clk = Clock()
    with clock.use(clk):
        b = make_bucket()
        decide(b, [MINUTE])
        clk.t += ACCOUNTING_PERIOD_MS                       # next hour: the first one is closed, unsent
        decide(b, [MINUTE])
        info = json.loads(run(b.inspect(encode_decide([MINUTE, BURST], 0))))
        plain = json.loads(run(b.inspect()))
    assert info["rules"]["burst"] == {"state": None, "remaining": 5, "reset_ms": 0}
    assert info["rules"]["minute"]["remaining"] == 2
    assert [(c["rule"], c["allowed"]) for c in info["closed"]] == [("minute", 1)]
    assert info["unsent"] == 2 and info["now_ms"] == clk.t
    assert "burst" not in plain["rules"] and "remaining" not in plain["rules"]["minute"]


def test_reset_counts_the_rules_it_cleared_and_inspect_sees_no_state():
    with clock.use(Clock()):
        b = make_bucket()
        decide(b, [MINUTE, BURST])
        assert json.loads(run(b.reset())) == {"client": "client-a", "reset_rules": 2}
        assert json.loads(run(b.reset()))["reset_rules"] == 0
        info = json.loads(run(b.inspect()))
    assert all(r["state"] is None for r in info["rules"].values())
    assert info["rules"]["minute"]["allowed"] == 1          # usage kept for the store
