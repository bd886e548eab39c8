"""A Durable Object's id as the platform hands it out: 64 hex digits, and the name when the
id came from `idFromName`/`getByName` (what the object reads as `ctx.id.name`).

`_hex` is read by the other modules of this package (the namespace keys its live objects
on it); Worker code sees only what the platform's id offers.
"""
from __future__ import annotations

from typing import Any


class DurableObjectId:
    __slots__ = ("_hex", "name")

    def __init__(self, hex_id: str, name: str | None = None) -> None:
        self._hex = hex_id
        self.name = name

    def toString(self) -> str:
        return self._hex

    def equals(self, other: Any) -> bool:
        return isinstance(other, DurableObjectId) and other._hex == self._hex

    def __eq__(self, other: Any) -> bool:
        return self.equals(other)

    def __hash__(self) -> int:
        return hash(self._hex)

    def __str__(self) -> str:
        return self._hex

    def __repr__(self) -> str:
        return f"DurableObjectId({self._hex[:16]}..., name={self.name!r})"
