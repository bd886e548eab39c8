"""The one wall clock the edges read, in integer epoch milliseconds.

Why one place: a decision reads the clock exactly once and passes it to the
core (on Workers `Date.now()` only advances after I/O), and tests swap the
source here instead of sleeping. The core's functions never call it: they take
`now_ms`. The Durable Objects, the cron flush, the metrics scrape and the HTTP
sink's retry deadline all read this one, so a test's virtual time is the same
time everywhere.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Callable, Iterator

_source: Callable[[], int] = lambda: int(time.time() * 1000)


def now_ms() -> int:
    return _source()


@contextmanager
def use(source: Callable[[], int]) -> Iterator[None]:
    """Run a block with another clock (tests): `with clock.use(lambda: t[0]): ...`."""
    global _source
    previous, _source = _source, source
    try:
        yield
    finally:
        _source = previous
