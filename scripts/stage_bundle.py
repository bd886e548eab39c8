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

import os
import sys
import tempfile
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
    """Make `dest` hold exactly `edge_modules()`, without ever removing the tree.

    Why not rmtree-and-copy: wrangler (dev/deploy), the local runtime and the
    tests may stage or read the same folder at the same moment; each file is
    replaced atomically (write beside it, then os.replace), unchanged files
    are left alone, and only files no longer shipped are deleted.
    """
    modules = edge_modules(root)
    wanted = {dest / rel for rel in modules}
    for rel in modules:
        target = dest / rel
        data = (root / rel).read_bytes()
        if target.is_file() and target.read_bytes() == data:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, target)
    if dest.is_dir():
        for path in sorted(dest.rglob("*"), reverse=True):  # children before their folders
            if path.is_file() and path not in wanted and not path.name.endswith(".tmp"):
                path.unlink(missing_ok=True)
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()
    return modules


def refuse_invalid_config() -> None:
    """The [build] step runs before every `wrangler deploy`/`dev`: a config that could never
    work (scripts/check) stops the upload here. The config is $TOLLGATE_CONFIG (the local
    runtime sets it), else the wrangler.toml wrangler runs the build beside (its cwd)."""
    sys.path.insert(0, str(ROOT))
    from src.localedge.check import check_file, render
    here = Path.cwd() / "wrangler.toml"
    config = Path(os.environ.get("TOLLGATE_CONFIG") or (here if here.is_file() else ROOT / "wrangler.toml"))
    report = check_file(config)
    if not report.ok:
        sys.exit(render(report, config) + "\nstage_bundle: refusing to build a bundle for an invalid config")


if __name__ == "__main__":
    refuse_invalid_config()
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "build" / "edge"
    staged = stage(target)
    print(f"staged {len(staged)} modules into {target}")
    sys.path.insert(0, str(ROOT / "scripts"))
    from vendor_sdk import VendorError, vendor   # the `workers` SDK the bundle must carry
    try:
        print(f"vendored Python dependencies into {vendor()}")
    except VendorError as err:
        sys.exit(f"stage_bundle: {err}")
