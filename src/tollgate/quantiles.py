"""Percentiles from bucketed histograms, as Prometheus `histogram_quantile` computes them.

Why the same method: the dashboard page shows p50/p90/p99 next to a Grafana panel
that asks Prometheus for them; both must say the same for the same buckets.
Linear interpolation inside the bucket that holds the rank, 0 as the first
bucket's lower bound; a rank in the +Inf bucket answers the highest finite
bound (Prometheus does the same), which the caller shows as "above" it.
"""
from __future__ import annotations

from typing import Sequence


def quantile(q: float, bounds: Sequence[float], counts: Sequence[int]) -> float | None:
    """The q-quantile (0 < q < 1) of per-bucket counts (not cumulative), `len(bounds) + 1`
    of them, the last one +Inf. None when the histogram is empty."""
    if not 0 < q < 1:
        raise ValueError(f"q: expected 0 < q < 1, got {q!r}")
    if len(counts) != len(bounds) + 1:
        raise ValueError(f"counts: expected {len(bounds) + 1} buckets (the bounds and +Inf), got {len(counts)}")
    total = sum(counts)
    if total <= 0:
        return None
    rank = q * total
    seen = 0
    for i, n in enumerate(counts):
        if n and seen + n >= rank:
            if i == len(bounds):                       # +Inf: no upper bound to interpolate to
                return float(bounds[-1])
            lower = float(bounds[i - 1]) if i else 0.0
            return lower + (float(bounds[i]) - lower) * (rank - seen) / n
        seen += n
    return float(bounds[-1])


def overflowed(q: float, counts: Sequence[int]) -> bool:
    """True when the q-quantile's rank falls in the +Inf bucket (the value is a lower bound)."""
    total = sum(counts)
    return total > 0 and sum(counts[:-1]) < q * total
