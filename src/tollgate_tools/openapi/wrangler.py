"""The `[vars.TOLLGATE]` section as TOML (tomli-w), and writing it into a wrangler.toml.

Why text surgery for --write: wrangler.toml is hand-written and commented, and
no TOML writer keeps comments. Only the lines of `[vars.TOLLGATE]` and its
sub-tables are replaced; the result is parsed again and compared, so a file
this cannot edit safely is refused rather than damaged.
"""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import tomli_w

from src.tollgate.config import ConfigError, parse_config
from src.tollgate_tools.openapi.spec import SpecError

_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")


def render(tollgate: dict) -> str:
    """`[vars.TOLLGATE]` and its sub-tables, ready to paste into wrangler.toml."""
    return tomli_w.dumps({"vars": {"TOLLGATE": tollgate}}).replace("[vars]\n\n", "", 1).lstrip("\n")


def _is_tollgate(table: str) -> bool:
    name = table.replace('"', "").replace(" ", "")
    return name == "vars.TOLLGATE" or name.startswith("vars.TOLLGATE.")


def replace_section(text: str, section: str) -> str:
    """`text` (a wrangler.toml) with its [vars.TOLLGATE] tables replaced by `section`
    (or `section` added at the end when it has none)."""
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    inside, placed = False, False
    for line in lines:
        header = _HEADER.match(line)
        if header:
            if _is_tollgate(header.group(1)):
                if not placed:
                    out.append(section if section.endswith("\n") else section + "\n")
                    placed = True
                inside = True
                continue
            if inside:
                out.append("\n")
            inside = False
        if not inside:
            out.append(line)
    if not placed:
        if out and not out[-1].endswith("\n"):
            out.append("\n")
        out.append("\n" + section)
    return "".join(out)


def write(path: Path, tollgate: dict) -> dict:
    """Put `tollgate` into `path` as [vars.TOLLGATE], keeping everything else as it was, the
    existing per-client `overrides` included (they are operator data, not in the spec).
    Returns the table written."""
    try:
        text = path.read_text()
        before = tomllib.loads(text)
    except OSError as exc:
        raise SpecError(f"{path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML ({exc}); not written") from exc
    old = before.get("vars", {}).get("TOLLGATE")
    if isinstance(old, dict) and "overrides" in old and "overrides" not in tollgate:
        tollgate = {**tollgate, "overrides": old["overrides"]}
        try:
            parse_config(tollgate)
        except ConfigError as exc:
            raise SpecError(f"{path}: the existing overrides do not fit the imported rules; not written:\n  "
                            + "\n  ".join(exc.errors)) from exc
    new_text = replace_section(text, render(tollgate))
    try:
        after = tomllib.loads(new_text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: cannot replace [vars.TOLLGATE] safely here ({exc}); not written: "
                        "paste the printed section by hand") from exc
    before.setdefault("vars", {}).pop("TOLLGATE", None)
    got = after.get("vars", {}).pop("TOLLGATE", None)
    if got != tollgate or after != before:
        raise SpecError(f"{path}: cannot replace [vars.TOLLGATE] safely here (is it an inline table?); "
                        "not written: paste the printed section by hand")
    path.write_text(new_text)
    return tollgate
