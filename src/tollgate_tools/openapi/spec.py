"""Reading an OpenAPI document and walking its operations.

Why a module of its own: importing and annotating must agree on which
operations exist, what request path each one answers to (the server's base
path included: the Worker sees the full path) and which extensions apply to
it (operation, then path item, then document level).
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple
from urllib.parse import urlsplit

import yaml

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_PARAM = re.compile(r"\{[^/{}]+\}")


class SpecError(ValueError):
    """The spec cannot be read or used; the message names the file and what is wrong."""


class Operation(NamedTuple):
    method: str          # upper case
    template: str        # the spec's path, e.g. /orders/{id}
    path: str            # base path + template, e.g. /v1/orders/{id}
    glob: str            # the Tollgate path glob, e.g. /v1/orders/*
    sample: str          # a concrete request path, e.g. /v1/orders/1
    node: dict           # the operation object (mutable: annotate writes into it)
    path_item: dict

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"


class Document(NamedTuple):
    raw: dict
    format: str          # "yaml" | "json"
    source: Path


def load(path: Path) -> Document:
    """The parsed document; SpecError for a missing file, bad YAML/JSON or a non-3.x spec."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError(f"{path}: {exc.strerror or exc}") from exc
    fmt = "json" if text.lstrip().startswith("{") else "yaml"
    try:
        raw = json.loads(text) if fmt == "json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise SpecError(f"{path}: not valid {fmt.upper()}: {exc}") from exc
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: expected an OpenAPI document (a mapping), got {type(raw).__name__}")
    version = str(raw.get("openapi", ""))
    if not version.startswith("3."):
        found = f"swagger {raw['swagger']}" if "swagger" in raw else (version or "no 'openapi' field")
        raise SpecError(f"{path}: only OpenAPI 3.0 and 3.1 are supported, found {found}")
    if not isinstance(raw.get("paths", {}), dict):
        raise SpecError(f"{path}: 'paths' must be a mapping")
    return Document(raw, fmt, path)


def dump(doc: Document, raw: dict) -> str:
    """`raw` in the document's own format (YAML comments are not kept)."""
    if doc.format == "json":
        return json.dumps(raw, indent=2, ensure_ascii=False) + "\n"
    return yaml.safe_dump(raw, sort_keys=False, allow_unicode=True, width=100)


def base_path(raw: dict, override: str | None = None) -> str:
    """The path prefix every operation's path gets: `override`, else the first server URL's path."""
    if override is not None:
        prefix = override
    else:
        servers = raw.get("servers") or []
        url = servers[0].get("url", "") if servers and isinstance(servers[0], dict) else ""
        prefix = urlsplit(url).path if "://" in url else url
        prefix = _PARAM.sub("*", prefix)
    prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
    return prefix


def operations(raw: dict, prefix: str = "") -> Iterator[Operation]:
    """Every operation, in the spec's order."""
    for template, item in (raw.get("paths") or {}).items():
        if not isinstance(item, dict):
            continue
        for method in METHODS:
            node = item.get(method)
            if isinstance(node, dict):
                full = prefix + template
                yield Operation(method.upper(), template, full, _PARAM.sub("*", full),
                                _PARAM.sub("1", full.replace("*", "x")), node, item)


def extension(raw: dict, op: Operation, name: str,
              skip: Callable[[Any], bool] = lambda value: False) -> tuple[str, Any] | None:
    """(level, value) of the extension nearest to the operation: "operation", "path" or "document"
    (a value for which `skip` is true does not count)."""
    for level, holder in (("operation", op.node), ("path", op.path_item), ("document", raw)):
        if name in holder and not skip(holder[name]):
            return level, holder[name]
    return None
