"""src/tollgate/clock.py: the one clock, swappable for a block and restored after it."""
from __future__ import annotations

import time

import pytest

from src.tollgate import clock


def test_the_real_clock_is_epoch_ms():
    before = int(time.time() * 1000)
    assert before <= clock.now_ms() <= int(time.time() * 1000)


def test_use_swaps_the_clock_everywhere_and_restores_it_even_on_error():
    with pytest.raises(RuntimeError):
        with clock.use(lambda: 42):
            assert clock.now_ms() == 42
            with clock.use(lambda: 7):          # nested: the inner block's clock, then the outer's again
                assert clock.now_ms() == 7
            assert clock.now_ms() == 42
            raise RuntimeError("boom")
    assert clock.now_ms() > 1_700_000_000_000
