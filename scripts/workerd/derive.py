"""The local-only wrangler.toml that `scripts/dev --workerd` hands to wrangler dev.

What differs from the operator's config, and why (README "Real workerd"):
- compatibility flags: the Python flags select workerd's *development* Pyodide
  bundle (`python_workers_development`), the one we can build offline. The
  release bundle for our date (Pyodide 314.0.6, `pyodide_314.0.6_2026-08-17_11`)
  is checked against a sha256 compiled into workerd, and ours does not match it
  bit for bit. With our date the release flags that `python_workers` implies
  outrank the development flag (workerd takes the enabled Python flag with the
  highest ordinal: cloudflare/workerd src/workerd/api/pyodide/pyodide.c++,
  getPythonSnapshotRelease), so they are switched off by their disable names.
  Both bundles are built from the same npm pyodide 314.0.6: the same CPython 3.14.
- paths (`main`, `base_dir`, D1 `migrations_dir`) are made absolute against the
  operator's file, so the derived file can live under the state folder.
- `[build]` is dropped: scripts/dev runs it itself, in the operator's folder.
- `ORIGIN_URL` follows `--origin`, as in scripts/dev.
"""
from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import tomli_w

DEV_PYTHON_FLAGS = ["python_workers", "python_workers_development",
                    "no_python_workers_20250116", "no_python_workers_20260610"]


def local_flags(flags: list[str]) -> list[str]:
    """The operator's flags with the Python ones swapped for the development bundle's
    (a JavaScript Worker's flags are left as they are)."""
    if "python_workers" not in flags:
        return flags
    kept = [f for f in flags if not f.startswith(("python_workers", "no_python_workers"))]
    return kept + DEV_PYTHON_FLAGS


def derive(config: Path, folder: Path, *, origin: str | None, drop_origin: bool, main: Path, base_dir: Path,
           migrations: dict[str, Path]) -> Path:
    """Write folder/wrangler.toml for wrangler dev on our workerd; returns its path.

    `origin` replaces ORIGIN_URL; `drop_origin` removes it (the decision service);
    `main`, `base_dir` and each D1 binding's `migrations` folder come resolved (the
    config's own, the repo's for a rules-only config, or a dry-run bundle's).
    """
    raw: dict[str, Any] = tomllib.loads(config.read_text())
    raw["main"], raw["base_dir"] = str(main), str(base_dir)
    raw["compatibility_flags"] = local_flags(list(raw.get("compatibility_flags", [])))
    raw.pop("build", None)
    for db in raw.get("d1_databases", []):
        if db.get("binding") in migrations:
            db["migrations_dir"] = str(migrations[db["binding"]])
    vars_ = raw.setdefault("vars", {})
    if drop_origin:
        vars_.pop("ORIGIN_URL", None)
    elif origin:
        vars_["ORIGIN_URL"] = origin
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "wrangler.toml"
    target.write_text("# Derived by scripts/dev --workerd from " + str(config) + ": local only, never deployed.\n"
                      + tomli_w.dumps(raw))
    return target


def link_beside(folder: Path, name: str, source: Path) -> None:
    """folder/name -> source (wrangler reads python_modules/ and .dev.vars beside its config)."""
    link = folder / name
    if link.is_symlink() or link.exists():
        if link.is_symlink() and Path(os.readlink(link)) == source:
            return
        link.unlink()
    if source.exists():
        link.symlink_to(source)
