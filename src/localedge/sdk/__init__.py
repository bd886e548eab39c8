"""The local stand-in for Cloudflare's `workers` SDK (PyPI workers-runtime-sdk).

`install()` puts this folder on `sys.path` so `import workers` in the Worker
and the Durable Objects finds `sdk/workers/`. The runtime itself imports the
SDK through `workers` too (after `install()`), so both sides share one copy
of each class.
"""
from __future__ import annotations

import sys
from pathlib import Path

SDK_DIR = str(Path(__file__).resolve().parent)


def install() -> None:
    """Make `import workers` resolve to the local SDK (idempotent)."""
    if SDK_DIR not in sys.path:
        sys.path.insert(0, SDK_DIR)
    loaded = sys.modules.get("workers")
    if loaded is not None and not str(getattr(loaded, "__file__", "")).startswith(SDK_DIR):
        raise ImportError(f"another 'workers' module is already imported from {loaded.__file__}")
