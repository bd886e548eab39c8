"""JS `Headers` semantics and the SDK's `HTTPMessageMapping` view of them.

What the real SDK does (workers-runtime-sdk utils.py `_js_headers_to_http_message`):
it iterates the JS Headers object and copies each pair into an
`HTTPMessageMapping` (`http.client.HTTPMessage` + `Mapping`). JS Headers
iteration (Fetch standard "sort and combine") yields lower-case names in sorted
order, each name once with its values joined by ", ", except `set-cookie`
whose values come one by one. We keep headers the same way so the worker sees
exactly what it would see on the edge.
"""
from __future__ import annotations

import http.client
import re
from collections.abc import Mapping
from typing import Any, Iterable, Iterator

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_NAMES: dict[str, str] = {}  # header names already validated -> lower-case (a hot path)


class HTTPMessageMapping(http.client.HTTPMessage, Mapping):
    """Same class shape as the SDK's (utils.py): case-insensitive get, items, duplicates kept."""


class JsHeaders:
    """A JS `Headers` object: lower-case names, values trimmed, sort-and-combine iteration."""

    __slots__ = ("_pairs",)

    def __init__(self, init: Any = None) -> None:
        self._pairs: list[tuple[str, str]] = []
        if init is None:
            return
        if isinstance(init, JsHeaders):
            self._pairs = list(init._pairs)
            return
        # Like the SDK's _to_js_headers: a dict or a list of pairs, nothing else.
        if isinstance(init, dict):
            items: Iterable[Any] = init.items()
        elif isinstance(init, list):
            items = init
        else:
            raise TypeError("Received unexpected type for headers argument")
        append = self.append
        for pair in items:
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise TypeError("Failed to construct 'Headers': each header must be a [name, value] pair")
            append(pair[0], pair[1])

    @staticmethod
    def _name(name: Any) -> str:
        known = _NAMES.get(name)
        if known is not None:
            return known
        text = str(name)
        if not _TOKEN.match(text):
            raise TypeError(f"Invalid header name: {text!r}")
        if len(_NAMES) < 4096 and isinstance(name, str):
            _NAMES[name] = text.lower()
        return text.lower()

    @staticmethod
    def _value(value: Any) -> str:
        value = str(value).strip(" \t\r\n")
        if "\r" in value or "\n" in value or "\0" in value:
            raise TypeError(f"Invalid header value: {value!r}")
        return value

    def append(self, name: Any, value: Any) -> None:
        self._pairs.append((self._name(name), self._value(value)))

    def set(self, name: Any, value: Any) -> None:
        key = self._name(name)
        self._pairs = [p for p in self._pairs if p[0] != key]
        self._pairs.append((key, self._value(value)))

    def delete(self, name: Any) -> None:
        key = self._name(name)
        self._pairs = [p for p in self._pairs if p[0] != key]

    def has(self, name: Any) -> bool:
        key = str(name).lower()
        return any(p[0] == key for p in self._pairs)

    def get(self, name: Any) -> str | None:
        key = str(name).lower()
        values = [v for k, v in self._pairs if k == key]
        return ", ".join(values) if values else None

    def getSetCookie(self) -> list[str]:
        return [v for k, v in self._pairs if k == "set-cookie"]

    def raw_pairs(self) -> list[tuple[str, str]]:
        """Every (name, value) as appended, for the wire (runtime use)."""
        return self._pairs

    def entries(self) -> list[tuple[str, str]]:
        """Fetch-standard sort and combine."""
        pairs = self._pairs
        if not pairs:
            return []
        combined: dict[str, str] = {}
        cookies: list[str] = []
        for k, v in pairs:
            if k == "set-cookie":
                cookies.append(v)
            elif k in combined:
                combined[k] = f"{combined[k]}, {v}"
            else:
                combined[k] = v
        out = [(k, combined[k]) for k in sorted(combined)]
        if cookies:
            out.extend(("set-cookie", c) for c in cookies)
            out.sort(key=lambda p: p[0])  # stable: cookies keep their order
        return out

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.entries())

    def __repr__(self) -> str:
        return f"Headers({self.entries()!r})"


def to_js_headers(headers: Any) -> JsHeaders:
    """The SDK's `_to_js_headers`: list of pairs, dict or Headers; anything else is a TypeError."""
    if isinstance(headers, JsHeaders):
        return headers
    if isinstance(headers, (list, dict)):
        return JsHeaders(headers)
    raise TypeError("Received unexpected type for headers argument")


def to_http_message(headers: JsHeaders) -> HTTPMessageMapping:
    """The SDK's `_js_headers_to_http_message` (without the preserve-commas compat flag)."""
    result = HTTPMessageMapping()
    # Same content as `result[key] = val` per pair: the compat32 policy of
    # http.client.HTTPMessage stores (name, value) unchanged; filling the list
    # at once skips its per-header call overhead.
    result._headers = [(key, val.strip()) for key, val in headers.entries()]
    return result
