"""Local stand-in for Cloudflare's `workers` SDK (workers-runtime-sdk 1.9.5).

Only the part Tollgate uses, with the SDK's behaviour: see README.md of
src/localedge. Installed on `sys.path` by `src.localedge.sdk.install()`.
"""
from .entrypoints import DurableObject, WorkerEntrypoint, WorkflowEntrypoint, handler
from .fetch import fetch
from .headers import HTTPMessageMapping
from .request import Request
from .response import FetchResponse, Response
from .rpc import JsDict, python_from_rpc, python_to_rpc

__all__ = [
    "DurableObject",
    "FetchResponse",
    "HTTPMessageMapping",
    "JsDict",
    "Request",
    "Response",
    "WorkerEntrypoint",
    "WorkflowEntrypoint",
    "fetch",
    "handler",
    "python_from_rpc",
    "python_to_rpc",
]
