"""2,000 generated requests against the running gateway (scripts/fuzz_gateway.py): no 5xx
(but workerd's own 501 for a method it does not know), no traceback, problem+json for every
error the gateway makes, and every tracked bucket holding exactly what was admitted.
Derandomized: the same requests every run. `scripts/fuzz --requests N --seed S` runs longer."""
from __future__ import annotations

from scripts.fuzz_gateway import run
from scripts.fuzz_requests import POOL


def test_two_thousand_generated_requests_find_nothing(tmp_path):
    result = run(2000, folder=tmp_path)
    assert result.findings == [], "\n".join(result.findings)
    assert result.requests >= 2000
    assert set(result.tracked) == set(POOL), "every pool client's bucket was checked"
    # the generated traffic reaches every kind of answer, so the checks above mean something
    assert {200, 400, 429, 431, 501} <= set(result.statuses), result.statuses
