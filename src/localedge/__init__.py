"""Local edge runtime: runs the Worker named in wrangler.toml, its Durable
Objects, D1, alarms and cron on CPython with real HTTP and real SQLite.

`LocalEdge` (runtime.py) is the programmatic entry point; `python -m
src.localedge` and `scripts/dev` are the command line. See README.md.
"""
from __future__ import annotations

from src.localedge import sdk

# Every module of the runtime imports Cloudflare's SDK as `workers` (the local
# stand-in), so importing any of them alone (a test) must find it too.
sdk.install()

__all__ = ["LocalEdge"]


def __getattr__(name: str):
    # Lazy: importing the package must not import aiohttp or the SDK.
    if name == "LocalEdge":
        from src.localedge.runtime import LocalEdge
        return LocalEdge
    raise AttributeError(name)
