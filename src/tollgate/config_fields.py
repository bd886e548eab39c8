"""Field checks every part of the config parser shares: booleans, unknown keys (with a
did-you-mean), and how a wrong value's type is named in an error."""
from __future__ import annotations

from typing import Any, Mapping


def bool_field(table: Mapping, key: str, default: bool, where: str, errors: list[str]) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        errors.append(f"{where}.{key}: expected true or false, got {value!r}")
        return default
    return value


def unknown_keys(table: Mapping, known: tuple[str, ...], where: str, errors: list[str]) -> None:
    for key in table:
        if key not in known:
            errors.append(f"{where}.{key}: unknown setting{did_you_mean(key, known)} "
                          f"(known: {', '.join(known)})")


def did_you_mean(word: Any, choices: Any) -> str:
    import difflib  # only on a config error: importing it costs ~30 ms of Worker start-up on Pyodide

    close = difflib.get_close_matches(str(word), list(choices), n=1)
    return f' (did you mean "{close[0]}"?)' if close else ""


def kind(value: Any) -> str:
    return {dict: "a table", list: "a list", str: "a string", bool: "a boolean", int: "an integer",
            float: "a number", type(None): "nothing"}.get(type(value), type(value).__name__)
