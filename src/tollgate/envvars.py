"""Reading plain-text vars from `env` the same way on both runtimes.

Workers vars are strings (or JSON objects); a missing var is an
AttributeError on the wrapped env. A bad value raises naming the var.
Pure (attribute reads on the object given): the Worker and the Durable
Objects both read their vars through here, so neither imports the other.
"""
from __future__ import annotations

from typing import Any


def env_str(env: Any, name: str, default: str | None = None) -> str | None:
    value = getattr(env, name, None)
    if value is None:
        return default
    return str(value)


def env_int(env: Any, name: str, default: int, minimum: int = 0) -> int:
    raw = getattr(env, name, None)
    if raw is None or raw == "":
        return default
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise ValueError(f"{name}: expected an integer, got {raw!r}") from None
    if value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value}")
    return value


def env_bool(env: Any, name: str, default: bool = False) -> bool:
    raw = getattr(env, name, None)
    if raw is None or raw == "":
        return default
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name}: expected true or false, got {raw!r}")
