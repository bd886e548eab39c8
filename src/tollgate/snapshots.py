"""Usage snapshots: what a bucket reports and what the store keeps.

A record is the *cumulative* usage of one client under one rule in one
accounting period, stamped with a version that only grows. Stores upsert by
(client, rule, period_start_ms) keeping the highest version, so delivering a
record twice, or an older record after a newer one, changes nothing: that is
what makes the whole pipeline exactly-once in effect.

Counters: `allowed` requests admitted, `admitted` cost admitted (billing
units), `denied` requests denied by this rule, `shadow_denied` requests a
shadow rule would have denied.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any, Iterable, NamedTuple

from src.tollgate.checks import check_int, check_str

SIGNATURE_HEADER = "X-Tollgate-Signature"
TIMESTAMP_HEADER = "X-Tollgate-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
NDJSON_TYPE = "application/x-ndjson"

FIELDS = ("client", "rule", "period_start_ms", "allowed", "admitted", "denied", "shadow_denied", "version")
COUNTERS = ("allowed", "admitted", "denied", "shadow_denied")


class SnapshotError(ValueError):
    """A record or batch that does not have the documented shape."""


class UsageRecord(NamedTuple):
    # A NamedTuple, not a dataclass: importing `dataclasses` costs ~35 ms of Worker start-up on
    # Pyodide (measured by tests/conformance).
    client: str
    rule: str
    period_start_ms: int
    allowed: int
    admitted: int
    denied: int
    shadow_denied: int
    version: int

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.client, self.rule, self.period_start_ms)

    def as_row(self) -> list:
        """Compact list form, used across Durable Object RPC."""
        return [self.client, self.rule, self.period_start_ms, self.allowed, self.admitted,
                self.denied, self.shadow_denied, self.version]

    def as_dict(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in FIELDS}


def _check_int(value: Any, where: str) -> int:
    return check_int(value, where, SnapshotError)


def _check_str(value: Any, where: str) -> str:
    return check_str(value, where, SnapshotError)


def record(client: Any, rule: Any, period_start_ms: Any, allowed: Any, admitted: Any, denied: Any,
           shadow_denied: Any, version: Any, where: str = "record") -> UsageRecord:
    """Build a record from untrusted values, naming the field that is wrong."""
    return UsageRecord(
        _check_str(client, f"{where}.client"), _check_str(rule, f"{where}.rule"),
        _check_int(period_start_ms, f"{where}.period_start_ms"), _check_int(allowed, f"{where}.allowed"),
        _check_int(admitted, f"{where}.admitted"), _check_int(denied, f"{where}.denied"),
        _check_int(shadow_denied, f"{where}.shadow_denied"), _check_int(version, f"{where}.version"))


def from_row(row: Any, where: str = "record") -> UsageRecord:
    if not isinstance(row, (list, tuple)) or len(row) != len(FIELDS):
        raise SnapshotError(f"{where}: expected a list of {len(FIELDS)} values ({', '.join(FIELDS)})")
    return record(*row, where=where)


def from_dict(obj: Any, where: str = "record") -> UsageRecord:
    if not isinstance(obj, dict):
        raise SnapshotError(f"{where}: expected an object")
    missing = [f for f in FIELDS if f not in obj]
    if missing:
        raise SnapshotError(f"{where}: missing {', '.join(missing)}")
    return record(*(obj[f] for f in FIELDS), where=where)


def encode_rows(records: Iterable[UsageRecord]) -> str:
    """JSON text of compact rows, for RPC between buckets, outbox and flush."""
    return json.dumps([r.as_row() for r in records], separators=(",", ":"))


def decode_rows(text: str, what: str = "records") -> list[UsageRecord]:
    try:
        rows = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise SnapshotError(f"{what}: not JSON ({exc})") from None
    if not isinstance(rows, list):
        raise SnapshotError(f"{what}: expected a list")
    return [from_row(row, f"{what}[{i}]") for i, row in enumerate(rows)]


def encode_ndjson(records: Iterable[UsageRecord]) -> bytes:
    """One JSON object per line, keys in a fixed order (the HTTP sink body)."""
    return b"".join(json.dumps(r.as_dict(), separators=(",", ":")).encode() + b"\n" for r in records)


def decode_ndjson(body: bytes) -> list[UsageRecord]:
    out = []
    for i, line in enumerate(body.splitlines()):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise SnapshotError(f"line {i + 1}: not JSON ({exc})") from None
        out.append(from_dict(obj, f"line {i + 1}"))
    return out


def idempotency_key(body: bytes) -> str:
    """Same batch, same key: a receiver can drop a retried POST it already applied."""
    return hashlib.sha256(body).hexdigest()


def sign(secret: bytes, timestamp_s: int, body: bytes) -> str:
    """HMAC-SHA256 over "<timestamp>.<body>", as `sha256=<hex>`; the timestamp stops replays."""
    mac = hmac.new(secret, str(timestamp_s).encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: bytes, timestamp_s: int, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, timestamp_s, body), signature or "")


def merge_highest_version(records: Iterable[UsageRecord]) -> list[UsageRecord]:
    """One record per (client, rule, period): the one with the highest version."""
    best: dict[tuple[str, str, int], UsageRecord] = {}
    for rec in records:
        cur = best.get(rec.key)
        if cur is None or rec.version > cur.version:
            best[rec.key] = rec
    return list(best.values())


def shard_for(client: str, shards: int) -> int:
    """Outbox shard of a client: stable across isolates and deploys (not Python's hash())."""
    if shards < 1:
        raise ValueError(f"shards must be >= 1, got {shards}")
    return int.from_bytes(hashlib.sha256(client.encode()).digest()[:8], "big") % shards


def shard_name(index: int) -> str:
    return f"shard-{index}"
