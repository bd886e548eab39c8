"""How workerd calls into a Python entrypoint class, re-told for the conformance harness.

workerd does not hand JavaScript values straight to a Python `WorkerEntrypoint`
or `DurableObject`. Its python-entrypoint-helper wraps every instance in a JS
Proxy (makeEntrypointProxyHandler) and routes each call through
`introspection.wrapper_func` (cloudflare/workerd src/pyodide/internal/introspection.py,
src/pyodide/python-entrypoint-helper.ts, read at commit 6552d999, Aug 2026):

* `fetch` and every RPC method (including `scheduled` on a WorkerEntrypoint):
  each argument goes through `workers.python_from_rpc` (a JS Request becomes a
  `workers.Request`, a plain JS object a `JsDict`, a string stays a str), the
  method is called (`relaxed_call` — extra arguments dropped — only for `fetch`),
  it is awaited, and the result goes back through `workers.python_to_rpc`
  (a `workers.Response` becomes its JS Response, a dict a JS object).
* Durable Object handlers `alarm`, `webSocketMessage`, ... are called relaxed with
  the raw JS arguments, no conversion.
* The class itself is constructed with the raw JS `ctx` and `env`; the SDK's
  `_wrap_class` wraps them (`DurableObjectContext`, `_EnvWrapper`).

This module is our own code with those semantics; it runs inside Pyodide only.
"""
from __future__ import annotations

from inspect import isawaitable
from typing import Any

from pyodide.code import relaxed_call
from workers import python_from_rpc, python_to_rpc


async def call_rpc(relaxed: bool, instance: Any, prop: str, *args: Any) -> Any:
    """An RPC or `fetch` call as workerd's wrapper_func makes it."""
    method = getattr(instance, prop)
    py_args = [python_from_rpc(arg) for arg in args]
    result = relaxed_call(method, *py_args) if relaxed else method(*py_args)
    if isawaitable(result):
        result = await result
    return python_to_rpc(result)


async def call_handler(instance: Any, prop: str, *args: Any) -> Any:
    """A Durable Object special handler (`alarm`): raw JS arguments, relaxed call."""
    result = relaxed_call(getattr(instance, prop), *args)
    if isawaitable(result):
        result = await result
    return result


def has_method(instance: Any, prop: str) -> bool:
    return callable(getattr(instance, prop, None))
