"""An operator's label for a client (`label` in an override), shown by the dashboard page.

Why labels: override keys are raw API keys, which the page must never show; the
page shows a client by its hash prefix, and by this label when the operator gave
one. So a label may not contain the key it names.
"""
from __future__ import annotations

from typing import Any

MAX_LABEL = 64
LABEL_KEY = "label"          # the reserved name in an override table


def parse_label(value: Any, key: str | None, where: str, errors: list[str]) -> str | None:
    """A label: 1-64 printable characters, not holding the override's API key (`key`)."""
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_LABEL or not value.isprintable():
        errors.append(f"{where}: expected a label of 1-{MAX_LABEL} printable characters (shown on the dashboard "
                      f"instead of the key), got {value!r}"[:300])
        return None
    if key and key in value:
        errors.append(f"{where}: the label must not contain the API key itself (the dashboard shows labels)")
        return None
    return value.strip()
