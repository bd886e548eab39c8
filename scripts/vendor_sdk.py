#!/usr/bin/env python3
"""Vendor the Worker's Python dependencies into `python_modules/` beside wrangler.toml.

Why: since compatibility date 2026-04-21 (flag `pythonExternalSDK`) the runtime no
longer carries Cloudflare's `workers` SDK, so the bundle must (workerd-offline.md).
wrangler uploads `python_modules/` beside wrangler.toml as vendored modules;
pywrangler's `sync` fills the same folder with the same layout (a site-packages
tree plus an empty `pyvenv.cfg`: cloudflare/workers-py
packages/cli/src/pywrangler/sync.py, `_install_requirements_to_vendor`). This does
it without uv or an emscripten CPython, which need downloads we cannot make here:
the pins are pyproject.toml's `[project] dependencies` (exact `==` pins, the ones
pywrangler reads too), each wheel's sha256 is in `[tool.tollgate.wheel-hashes]`.

Run by the `[build]` step (scripts/stage_bundle.py); safe to run concurrently.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class VendorError(RuntimeError):
    """A pin or a download is wrong; the message says which."""


def pinned_wheels(pyproject: Path = ROOT / "pyproject.toml") -> list[tuple[str, str]]:
    """[(requirement "name==version", "sha256:..."), ...] from pyproject.toml."""
    data = tomllib.loads(pyproject.read_text())
    hashes = data.get("tool", {}).get("tollgate", {}).get("wheel-hashes", {})
    pins = []
    for req in data.get("project", {}).get("dependencies", []):
        if "==" not in req:
            raise VendorError(f"pyproject.toml dependency {req!r} must be pinned with ==")
        if req not in hashes:
            raise VendorError(f"pyproject.toml: no [tool.tollgate.wheel-hashes] entry for {req!r}")
        pins.append((req, hashes[req]))
    return pins


def _download(pins: list[tuple[str, str]], dest: Path) -> list[Path]:
    reqs = dest / "requirements.txt"
    reqs.write_text("".join(f"{req} --hash={digest}\n" for req, digest in pins))
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
           "--only-binary=:all:", "--require-hashes", "-r", str(reqs), "-d", str(dest)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise VendorError(f"pip download of {', '.join(r for r, _ in pins)} failed: {done.stderr.strip()[-1500:]}")
    return sorted(dest.glob("*.whl"))


def vendor(root: Path = ROOT) -> Path:
    """Make root/python_modules hold exactly the pinned wheels; a no-op when it already does."""
    pins = pinned_wheels(root / "pyproject.toml")
    target = root / "python_modules"
    want = "".join(f"{req} {digest}\n" for req, digest in pins)
    stamp = root / ".cache" / "python_modules.stamp"   # outside the folder: wrangler uploads all of it
    if stamp.is_file() and stamp.read_text() == want and (target / "pyvenv.cfg").is_file():
        return target
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        work = Path(tmp)
        tree = work / "python_modules"
        tree.mkdir()
        for wheel in _download(pins, work):
            with zipfile.ZipFile(wheel) as zf:
                zf.extractall(tree)
        (tree / "pyvenv.cfg").touch()
        old = work / "old"
        if target.exists():
            os.replace(target, old)   # moved aside, then the new tree takes its name
        os.replace(tree, target)
    stamp.parent.mkdir(exist_ok=True)
    stamp.write_text(want)
    return target


if __name__ == "__main__":
    try:
        print(f"vendored {', '.join(r for r, _ in pinned_wheels())} into {vendor()}")
    except VendorError as err:
        print(f"vendor: {err}", file=sys.stderr)
        sys.exit(1)
