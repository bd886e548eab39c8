"""A wrangler.toml for the repo's Worker with other vars: for tests and benchmarks.

Why derived: the bindings and migrations come from the repo's own wrangler.toml
(the one source of configuration), so a test or a benchmark never runs against
a hand-copied binding list that has drifted from what users deploy. `main` and
`base_dir` point at the source tree, not the staged bundle, so nothing races a
build.
"""
from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, Iterable, Mapping

ROOT = Path(__file__).resolve().parents[2]
KEPT = ("compatibility_date", "compatibility_flags", "durable_objects", "migrations")


def toml_value(value: Any) -> str:
    """A TOML value for plain data (inline tables on one line are valid TOML 1.0)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML for {type(value).__name__}")


def derived_config(folder: Path, vars: Mapping[str, Any], secrets: Mapping[str, str], *,
                   name: str = "tollgate-derived", main: Path | None = None, base_dir: Path | None = None,
                   keep: Iterable[str] = KEPT, source: Path = ROOT / "wrangler.toml") -> Path:
    """Write `folder`/wrangler.toml (+ .dev.vars): the repo's `keep` sections, these vars and secrets."""
    base = tomllib.loads(source.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    top = {"name": name, "main": str(main or ROOT / "worker" / "entry.py"), "base_dir": str(base_dir or ROOT)}
    top.update({k: base[k] for k in keep if k in base})
    for db in top.get("d1_databases", []):   # the derived file lives elsewhere: no relative paths
        if "migrations_dir" in db:
            db["migrations_dir"] = str((source.parent / db["migrations_dir"]).resolve())
    lines = [f"{k} = {toml_value(v)}" for k, v in top.items()]
    lines.append("[vars]")
    lines.extend(f"{k} = {toml_value(v)}" for k, v in vars.items())
    path = folder / "wrangler.toml"
    path.write_text("\n".join(lines) + "\n")
    (folder / ".dev.vars").write_text("".join(f"{k}={v}\n" for k, v in secrets.items()))
    return path
