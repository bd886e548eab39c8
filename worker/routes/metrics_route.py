"""`/__tollgate/metrics`: Prometheus text, rendered by worker.metrics (which checks its own token)."""
from __future__ import annotations

from typing import Any

from worker import metrics
from worker.replies import Reply, method_not_allowed


async def handle_metrics(method: str, authorization: str | None, env: Any) -> Reply:
    if method not in ("GET", "HEAD"):
        return method_not_allowed(method, ("GET", "HEAD"))
    status, headers, body = await metrics.render(env, authorization)
    return Reply(status, headers, body)
