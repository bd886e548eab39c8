"""POST /__tollgate/admin/clients/<identity>/restore: refill an empty bucket from the store.

The gateway's admin router authenticates (ADMIN_TOKEN), turns <identity> into
the client key exactly as for GET/DELETE, and returns what `restore_client`
gives. Body: the client's usage records as NDJSON (what `scripts/reconcile
export` or the HTTP sink's system of record holds), or empty to let the
bucket read its records from D1 (USAGE_DB) itself.
"""
from __future__ import annotations

import json
from typing import Any

from src.tollgate.headers import problem
from src.tollgate.snapshots import SnapshotError, decode_ndjson, encode_rows

Result = tuple[int, list[tuple[str, str]], bytes]


def _json(status: int, obj: dict) -> Result:
    return status, [("Content-Type", "application/json")], json.dumps(obj).encode()


def _problem(status: int, title: str, detail: str) -> Result:
    body, headers = problem(status, title, detail)   # the one problem+json builder (RFC 9457)
    return status, headers, body


async def restore_client(env: Any, client_key: str, body: bytes | str | None) -> Result:
    raw = body.encode() if isinstance(body, str) else (body or b"")
    try:
        records = decode_ndjson(raw) if raw.strip() else []
    except SnapshotError as exc:
        return _problem(400, "Bad restore body", f"expected NDJSON usage records: {exc}")
    strangers = sorted({r.client for r in records if r.client != client_key})
    if strangers:
        return _problem(400, "Bad restore body", f"records for other clients: {', '.join(strangers[:3])}")
    if not records and getattr(env, "USAGE_DB", None) is None:
        return _problem(400, "Bad restore body", "no records given and no D1 store (USAGE_DB) to read them from")
    try:
        result = json.loads(await env.BUCKETS.getByName(client_key).restore(encode_rows(records) if records else ""))
    except Exception as exc:
        return _problem(503, "Bucket unavailable", f"restore failed: {type(exc).__name__}")
    if not result.get("ok"):
        return _problem(409, "Bucket not empty",
                        "This client's bucket is not empty: it already counts usage, so restoring would count "
                        "that usage twice. Restore refills only a bucket that lost its storage; deleting the "
                        "client (DELETE on this client's admin URL) forgets its limits but keeps its usage, "
                        "so it does not make a restore possible.")
    return _json(200, result)
