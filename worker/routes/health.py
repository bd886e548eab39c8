"""`/__tollgate/health`: the Worker is up and its configuration is valid."""
from __future__ import annotations

from worker.replies import Reply, json_reply, method_not_allowed
from worker.settings import Settings


def handle_health(method: str, settings: Settings) -> Reply:
    if method not in ("GET", "HEAD"):
        return method_not_allowed(method, ("GET", "HEAD"))
    return json_reply(200, {"status": "ok", "mode": "gateway" if settings.origin else "decision-service",
                            "rules": len(settings.config.rules)})
