#!/usr/bin/env python3
"""Prepare the wheels the core suite loads inside Pyodide, and say where they are.

Why a Python step: the wheels come from a package registry with pip (pinned,
hash-checked, pure-Python only). test_pyodide.py runs this and hands the JSON
it prints to core_on_pyodide.mjs.

Cache layout (gitignored, safe to delete; rebuilt when the pins change):
    .cache/pyodide/wheels/   the downloaded wheels
    .cache/pyodide/site/     pytest, hypothesis and friends unzipped
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = Path(os.environ.get("TOLLGATE_ROOT") or HERE.parent.parent).resolve()
REQUIREMENTS = HERE / "pyodide-requirements.txt"
# Pyodide 314 is CPython 3.14 on wasm: only pure-Python wheels can load.
PIP_TARGET = ["--python-version", "3.14", "--implementation", "py", "--abi", "none", "--platform", "any"]


def cache_dir() -> Path:
    return Path(os.environ.get("TOLLGATE_PYODIDE_CACHE") or HERE.parent.parent / ".cache" / "pyodide")


def _stamp() -> str:
    return hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:16]


def ensure_wheels(cache: Path) -> Path:
    """Download and unzip the pinned wheels unless the cache already holds these pins."""
    site, wheels = cache / "site", cache / "wheels"
    stamp_file = cache / ".stamp"
    if stamp_file.is_file() and stamp_file.read_text() == _stamp() and site.is_dir():
        return site
    for d in (site, wheels):
        shutil.rmtree(d, ignore_errors=True)
    wheels.mkdir(parents=True)
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
           "--no-deps", "--only-binary=:all:", "--require-hashes", *PIP_TARGET,
           "-r", str(REQUIREMENTS), "-d", str(wheels)]
    print("bootstrap: " + " ".join(cmd[2:]), file=sys.stderr)
    done = subprocess.run(cmd, stdout=sys.stderr, stderr=sys.stderr)
    if done.returncode != 0:
        raise SystemExit(f"bootstrap: pip download failed (exit {done.returncode}); "
                         "a package registry must be reachable on the first run")
    for wheel in sorted(wheels.glob("*.whl")):
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(site)
    stamp_file.write_text(_stamp())
    return site


def main() -> None:
    site = ensure_wheels(cache_dir())
    json.dump({"root": str(ROOT), "site": str(site), "python": sys.executable}, sys.stdout)


if __name__ == "__main__":
    main()
