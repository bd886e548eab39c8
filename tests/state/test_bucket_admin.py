"""durable_objects/bucket_admin.py: inspect (admin GET) and reset (admin DELETE)."""
from __future__ import annotations

import json

from src.tollgate import clock
from src.tollgate.wire import encode_decide
from tests.state.fakes import make_bucket
from tests.state.support import MINUTE, Clock, decide, rows, run


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
