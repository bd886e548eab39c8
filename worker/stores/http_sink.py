"""HTTP sink: POST NDJSON batches to any system of record.

Each batch carries `Idempotency-Key` (SHA-256 of the body, so a retried or
replayed batch has the same key), `X-Tollgate-Timestamp` and
`X-Tollgate-Signature: sha256=<hex>` = HMAC-SHA256(SNAPSHOT_SINK_SECRET,
"<timestamp>.<body>"). The receiver must upsert by (client, rule,
period_start_ms) keeping the highest `version` and answer 2xx only once the
batch is durable. Retries: network errors, 5xx and 429 (bounded, with
backoff, honouring a short Retry-After); other 4xx fail at once.
"""
from __future__ import annotations

import asyncio
from typing import Any, Sequence

from src.tollgate import clock
from src.tollgate.envvars import env_int, env_str
from src.tollgate.snapshots import (IDEMPOTENCY_HEADER, NDJSON_TYPE, SIGNATURE_HEADER, TIMESTAMP_HEADER,
                                    UsageRecord, encode_ndjson, idempotency_key, merge_highest_version, sign)
from worker.stores.base import StoreError, WriteResult

MAX_RETRY_AFTER_MS = 10_000


def _retry_after_ms(value: Any) -> int | None:
    try:
        return max(0, int(float(str(value).strip()) * 1000))
    except (TypeError, ValueError):
        return None


class HttpSink:
    name = "http"

    def __init__(self, url: str, secret: bytes, *, max_rows: int = 5000, attempts: int = 4,
                 backoff_ms: int = 250, timeout_ms: int = 10_000, fetch: Any = None) -> None:
        if not url.startswith(("https://", "http://")):
            raise ValueError(f"SNAPSHOT_SINK_URL: expected an http(s) URL, got {url!r}")
        self.url, self.secret = url, secret
        self.max_rows_per_call = max_rows
        self.attempts, self.backoff_ms, self.timeout_ms = attempts, backoff_ms, timeout_ms
        if fetch is None:
            from workers import fetch  # Cloudflare's SDK (or the local runtime's)
        self._fetch = fetch

    @classmethod
    def from_env(cls, env: Any) -> "HttpSink":
        url = env_str(env, "SNAPSHOT_SINK_URL")
        secret = env_str(env, "SNAPSHOT_SINK_SECRET")
        if not url:
            raise ValueError("SNAPSHOT_STORE=http needs SNAPSHOT_SINK_URL")
        if not secret:
            raise ValueError("SNAPSHOT_STORE=http needs the secret SNAPSHOT_SINK_SECRET (wrangler secret put)")
        return cls(url, secret.encode(), max_rows=env_int(env, "SNAPSHOT_SINK_BATCH_ROWS", 5000, minimum=1),
                   attempts=env_int(env, "SNAPSHOT_SINK_ATTEMPTS", 4, minimum=1),
                   backoff_ms=env_int(env, "SNAPSHOT_SINK_BACKOFF_MS", 250),
                   timeout_ms=env_int(env, "SNAPSHOT_SINK_TIMEOUT_MS", 10_000, minimum=1))

    def request(self, body: bytes, timestamp_s: int) -> dict[str, str]:
        return {
            "Content-Type": NDJSON_TYPE,
            IDEMPOTENCY_HEADER: idempotency_key(body),
            TIMESTAMP_HEADER: str(timestamp_s),
            SIGNATURE_HEADER: sign(self.secret, timestamp_s, body),
        }

    async def write(self, records: Sequence[UsageRecord], now_ms: int,
                    deadline_ms: int | None = None) -> WriteResult:
        """POST one batch; retries stop at `deadline_ms` (epoch ms) so a flush keeps its time budget."""
        rows = merge_highest_version(records)
        if not rows:
            return WriteResult(0, 0)
        body = encode_ndjson(rows)
        calls, last, wait = 0, "no attempt", self.backoff_ms
        for attempt in range(self.attempts):
            if attempt:
                pause = min(wait, MAX_RETRY_AFTER_MS)
                if deadline_ms is not None and clock.now_ms() + pause >= deadline_ms:
                    last += "; out of time for another attempt"
                    break
                await asyncio.sleep(pause / 1000)
            wait = self.backoff_ms * 2 ** attempt
            calls += 1
            headers = self.request(body, clock.now_ms() // 1000)
            timeout_ms = self.timeout_ms
            if deadline_ms is not None:
                timeout_ms = max(1, min(timeout_ms, deadline_ms - clock.now_ms()))
            try:
                resp = await asyncio.wait_for(
                    self._fetch(self.url, method="POST", headers=headers, body=body.decode()),
                    timeout_ms / 1000)
            except Exception as exc:  # network error or timeout: retry
                last = f"{type(exc).__name__}: {exc}"
                continue
            status = int(resp.status)
            if 200 <= status < 300:
                return WriteResult(len(rows), calls)
            last = f"HTTP {status}"
            if status == 429 or status >= 500:
                hinted = _retry_after_ms(resp.headers.get("retry-after")) if status == 429 else None
                if hinted is not None:
                    wait = max(wait, hinted)
                continue
            raise StoreError(f"sink refused the batch: {last}", permanent=True, subrequests=calls)
        raise StoreError(f"sink did not confirm after {calls} attempts: {last}", subrequests=calls)

    async def totals(self) -> None:
        return None  # write-only: totals live in the receiving system

    async def recent_totals(self, since_ms: int) -> None:
        return None  # write-only: the dashboard shows what the outbox shards counted instead
