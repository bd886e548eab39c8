#!/usr/bin/env python3
"""Prepare what the Pyodide conformance harness loads, and describe the project to it.

Why a Python step: the wheels come from a package registry with pip (pinned,
hash-checked, pure-Python only), and wrangler.toml is TOML, which Python reads
with the standard library. The harness (harness.mjs) runs this and reads one
JSON object from stdout.

Cache layout (gitignored, safe to delete; rebuilt when the pins change):
    .cache/conformance/wheels/   the downloaded wheels
    .cache/conformance/sdk/      workers-runtime-sdk unzipped (Cloudflare's `workers` package)
    .cache/conformance/site/     pytest, hypothesis and friends unzipped
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
# TOLLGATE_ROOT points the harness at another checkout (used to test the harness itself).
ROOT = Path(os.environ.get("TOLLGATE_ROOT") or HERE.parent.parent).resolve()
REQUIREMENTS = HERE / "pyodide-requirements.txt"
SDK_DISTRIBUTION = "workers_runtime_sdk"
# Pyodide 0.28 is CPython 3.13 on wasm: only pure-Python wheels can load.
PIP_TARGET = ["--python-version", "3.13", "--implementation", "py", "--abi", "none", "--platform", "any"]


def cache_dir() -> Path:
    return Path(os.environ.get("TOLLGATE_CONFORMANCE_CACHE") or HERE.parent.parent / ".cache" / "conformance")


def _stamp() -> str:
    return hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:16]


def ensure_wheels(cache: Path) -> tuple[Path, Path]:
    """Download and unzip the pinned wheels unless the cache already holds these pins."""
    sdk, site, wheels = cache / "sdk", cache / "site", cache / "wheels"
    stamp_file = cache / ".stamp"
    if stamp_file.is_file() and stamp_file.read_text() == _stamp() and sdk.is_dir() and site.is_dir():
        return sdk, site
    for d in (sdk, site, wheels):
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
        target = sdk if wheel.name.startswith(SDK_DISTRIBUTION + "-") else site
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(target)
    if not (sdk / "workers" / "__init__.py").is_file():
        raise SystemExit("bootstrap: workers-runtime-sdk wheel did not contain workers/__init__.py")
    stamp_file.write_text(_stamp())
    return sdk, site


def _dev_vars_example() -> dict[str, str]:
    """Secret names (and the example values the harness uses) from .dev.vars.example."""
    found: dict[str, str] = {}
    path = ROOT / ".dev.vars.example"
    if path.is_file():
        for line in path.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, value = line.split("=", 1)
                found[key.strip()] = value.strip().strip('"')
    return found


def project() -> dict:
    """What the harness needs from wrangler.toml (bindings, vars, crons, compatibility)."""
    config = tomllib.loads((ROOT / "wrangler.toml").read_text())
    return {
        "main": config.get("main"),
        "compatibility_date": config.get("compatibility_date"),
        "compatibility_flags": config.get("compatibility_flags", []),
        "vars": config.get("vars", {}),
        "durable_objects": config.get("durable_objects", {}).get("bindings", []),
        "d1_databases": config.get("d1_databases", []),
        "crons": config.get("triggers", {}).get("crons", []),
        "secrets": _dev_vars_example(),
    }


def main() -> None:
    cache = cache_dir()
    sdk, site = ensure_wheels(cache)
    json.dump({"root": str(ROOT), "cache": str(cache), "sdk": str(sdk), "site": str(site),
               "python": sys.executable, "project": project()}, sys.stdout)


if __name__ == "__main__":
    main()
