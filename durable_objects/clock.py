"""Alias of `src/tollgate/clock.py`, the one clock (kept for existing imports).

New code imports `src.tollgate.clock`; `use` here swaps that same clock.
"""
from src.tollgate.clock import now_ms, use

__all__ = ["now_ms", "use"]
