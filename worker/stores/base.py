"""The store interface the cron flush writes through.

A store must be idempotent per (client, rule, period_start): it keeps the
record with the highest version, so replays and reordering change nothing.
`write` either confirms every record it was given or raises StoreError, in
which case the flush leaves the records in the outbox for the next run.
"""
from __future__ import annotations

from typing import NamedTuple, Protocol, Sequence

from src.tollgate.snapshots import UsageRecord


class StoreError(Exception):
    """The store did not confirm a write. `permanent`: retrying the same batch will not help."""

    def __init__(self, message: str, *, permanent: bool = False, subrequests: int = 1) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.subrequests = subrequests


class WriteResult(NamedTuple):  # not a dataclass: `dataclasses` costs start-up time on Pyodide
    rows: int          # records confirmed
    subrequests: int   # store calls made (a D1 batch or an HTTP POST, retries included)
    statements: int = 0


class UsageStore(Protocol):
    name: str
    max_rows_per_call: int

    async def write(self, records: Sequence[UsageRecord], now_ms: int,
                    deadline_ms: int | None = None) -> WriteResult:
        """Confirm every record or raise StoreError; give up retrying at `deadline_ms` (epoch ms)."""
        ...

    async def totals(self) -> dict[str, dict[str, int]] | None:
        """Per rule: allowed, admitted, denied, shadow_denied over everything stored; None if unreadable."""
        ...

    async def recent_totals(self, since_ms: int) -> dict[str, dict[str, int]] | None:
        """Per rule, as `totals`, over the accounting hours starting at or after `since_ms`; None if
        the store cannot be read back (the HTTP sink)."""
        ...
