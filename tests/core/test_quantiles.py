"""Histogram percentiles agree with Prometheus histogram_quantile (src/tollgate/quantiles.py)."""
from __future__ import annotations

import pytest

from src.tollgate.quantiles import overflowed, quantile

BOUNDS = (1, 2, 5, 10)


def test_interpolates_inside_the_bucket_that_holds_the_rank():
    counts = [0, 10, 0, 10, 0]          # 10 in (1, 2], 10 in (5, 10]
    assert quantile(0.5, BOUNDS, counts) == pytest.approx(2.0)
    assert quantile(0.25, BOUNDS, counts) == pytest.approx(1.5)
    assert quantile(0.75, BOUNDS, counts) == pytest.approx(7.5)
    assert quantile(0.99, BOUNDS, counts) == pytest.approx(9.9)


def test_first_bucket_starts_at_zero_and_inf_answers_the_highest_bound():
    assert quantile(0.5, BOUNDS, [4, 0, 0, 0, 0]) == pytest.approx(0.5)
    assert quantile(0.99, BOUNDS, [1, 0, 0, 0, 9]) == 10.0
    assert overflowed(0.99, [1, 0, 0, 0, 9]) and not overflowed(0.05, [1, 0, 0, 0, 9])


def test_empty_and_bad_input():
    assert quantile(0.5, BOUNDS, [0] * 5) is None
    with pytest.raises(ValueError, match="0 < q < 1"):
        quantile(1.0, BOUNDS, [1] * 5)
    with pytest.raises(ValueError, match="5 buckets"):
        quantile(0.5, BOUNDS, [1] * 4)
