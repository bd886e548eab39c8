#!/usr/bin/env python3
"""Stage the Worker bundle root: build/edge/ mirrors the repo root, holding only
the modules that run on the edge (worker/, durable_objects/, src/tollgate/).

Why: wrangler bundles every .py under `base_dir` with a fixed `**/*.py` rule
(wrangler 4.x rejects `PythonModule` rules in wrangler.toml), so the repo root
itself would ship tests, scripts and virtual environments. Staging keeps the
import root identical (`from src.tollgate...` in both places) and the bundle
exact. wrangler runs this as the `[build]` command before dev and deploy.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EDGE_TREES = ("worker", "durable_objects", "src/tollgate")
EDGE_FILES = ("src/__init__.py",)


def edge_modules(root: Path = ROOT) -> list[Path]:
    """Every module the bundle must hold, relative to the repo root."""
    found = [Path(f) for f in EDGE_FILES]
    for tree in EDGE_TREES:
        found += sorted(p.relative_to(root) for p in (root / tree).rglob("*.py")
                        if "__pycache__" not in p.parts)
    return found


def stage(dest: Path, root: Path = ROOT) -> list[Path]:
    if dest.exists():
        shutil.rmtree(dest)
    modules = edge_modules(root)
    for rel in modules:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, dest / rel)
    return modules


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "build" / "edge"
    staged = stage(target)
    print(f"staged {len(staged)} modules into {target}")
