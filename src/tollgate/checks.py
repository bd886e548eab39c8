"""Checks for values that crossed a boundary (RPC payloads, JSON), naming the field.

Each caller passes its own error class (WireError, SnapshotError), so a bad
value is reported in the vocabulary of the format that carried it.
"""
from __future__ import annotations

from typing import Any


def check_int(value: Any, where: str, error: type[Exception], minimum: int = 0) -> int:
    """An int (not a bool) of at least `minimum`."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise error(f"{where}: expected an integer >= {minimum}, got {value!r}")
    return value


def check_str(value: Any, where: str, error: type[Exception]) -> str:
    """A non-empty str."""
    if not isinstance(value, str) or not value:
        raise error(f"{where}: expected a non-empty string, got {value!r}")
    return value
