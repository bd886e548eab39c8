"""Structured-clone copies for Durable Object RPC, with the SDK's refusals.

The real SDK converts arguments with `python_to_rpc` (rpc.py): tuples and
bytearrays raise `TypeError("<class 'tuple'> cannot be sent over RPC.")`,
awaitables too; results come back through `python_from_rpc`, which turns JS
objects into `JsDict`. The JS side then structured-clones the value, so
caller and callee never share a mutable object. We copy plain data directly
(faster than deepcopy or JSON) and refuse what would not survive the trip.
Functions would become RPC stubs on the edge; the local runtime refuses them.
"""
from __future__ import annotations

import datetime
import inspect
from typing import Any


class JsDict(dict):
    """A dict with attribute access to its keys, as the SDK's `python_from_rpc` returns."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value


_SCALARS = frozenset((str, int, float, bool, type(None), bytes))


def _refuse(value: Any) -> TypeError:
    if inspect.isawaitable(value):
        return TypeError(f"Awaitable {type(value)} cannot be sent over RPC.")
    return TypeError(f"{type(value)} cannot be sent over RPC.")


def _key(key: Any) -> str:
    t = type(key)
    if t is str:
        return key
    if isinstance(key, str):
        return str(key)
    if isinstance(key, (int, float)) and not isinstance(key, bool):
        return str(key)  # JS object keys are strings (Object.fromEntries)
    raise TypeError(f"{type(key)} cannot be sent over RPC as an object key.")


def clone(value: Any) -> Any:
    """A structured-clone copy of `value`; dicts arrive as `JsDict`. TypeError for what RPC refuses."""
    t = type(value)
    if t in _SCALARS:
        return value
    if t is dict or t is JsDict:
        return JsDict({(k if type(k) is str else _key(k)): (v if type(v) in _SCALARS else clone(v))
                       for k, v in value.items()})
    if t is list:
        return [v if type(v) in _SCALARS else clone(v) for v in value]
    if isinstance(value, (tuple, bytearray)):
        raise _refuse(value)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bytes):
        return bytes(value)
    if isinstance(value, dict):
        return clone(dict(value))
    if isinstance(value, list):
        return clone(list(value))
    if isinstance(value, (set, frozenset)):
        return {clone(v) for v in value}
    if isinstance(value, datetime.datetime):
        return datetime.datetime.fromtimestamp(value.timestamp())
    if isinstance(value, BaseException):
        return Exception(str(value))  # JS Error keeps only the message
    clone_method = getattr(value, "clone", None)
    if hasattr(value, "js_object") and callable(clone_method):
        return clone_method()  # Request / Response cross RPC as JS objects: a copy here
    raise _refuse(value)


def python_to_rpc(value: Any) -> Any:
    """Local counterpart of the SDK function of the same name: a checked copy."""
    return clone(value)


def python_from_rpc(value: Any) -> Any:
    """Local counterpart of the SDK function: dicts become `JsDict` (already plain Python here)."""
    return clone(value)


class RpcError(Exception):
    """What a caller sees when a Durable Object method raised.

    On Cloudflare the exception crosses as a JS Error with `.remote = True`
    (developers.cloudflare.com/durable-objects/best-practices/error-handling);
    the Python caller gets a JsException whose message names the Python error.
    The traceback stays on the callee's side (the runtime's log).
    """

    remote = True
    overloaded = False

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}" if message else name)
        self.name = name
        self.message = message


class OverloadedError(RpcError):
    """Durable Objects' infrastructure error for an object with too many queued requests:
    `.overloaded = True`, not `.remote` (the object's code never ran), never retried
    (developers.cloudflare.com/durable-objects/best-practices/error-handling/)."""

    remote = False
    overloaded = True
    retryable = False
