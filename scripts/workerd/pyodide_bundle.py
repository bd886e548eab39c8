#!/usr/bin/env python3
"""Build workerd's Python runtime bundle offline from the pinned npm `pyodide`.

Why: workerd downloads `pyodide_<version>_<date>_<backport>.capnp.bin` at start
and this machine has no network but the package registries. The bundle is a
Cap'n Proto `jsg::Bundle` of three internal modules (the patched Emscripten
glue, the wasm binary and the stdlib zip: facts in
shared/reference/workerd-offline.md); `capnp eval` from Debian's capnproto
writes it from our own schema (jsg_bundle.capnp) and patch list
(pyodide_patches.json).

Usage: python3 scripts/workerd/pyodide_bundle.py [--out DIR] [--name dev]
Writes DIR/pyodide_<name>.capnp.bin (default .cache/workerd/bundles, name
`dev`) and prints its path and sha256. Rebuilds only when an input changed.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PATCHES = HERE / "pyodide_patches.json"
SCHEMA = HERE / "jsg_bundle.capnp"
DEFAULT_OUT = ROOT / ".cache" / "workerd" / "bundles"
PREFIX = "pyodideRuntime-internal:"


class BundleError(RuntimeError):
    """The inputs do not make the bundle this workerd expects; the message says which."""


def patch_glue(source: str, replacements: list[dict]) -> str:
    """Apply every replacement; a pattern that no longer occurs is an error, because
    a silently skipped patch makes a bundle that fails at run time, far from here."""
    for item in replacements:
        if item["find"] not in source:
            raise BundleError(f"patch pattern not found in pyodide.asm.mjs: {item['find']!r} ({item['why']})")
        source = source.replace(item["find"], item["replace"])
    return source


def pyodide_dir() -> Path:
    found = ROOT / "node_modules" / "pyodide"
    if not (found / "pyodide.asm.mjs").is_file():
        raise BundleError(f"{found} has no pyodide.asm.mjs: run scripts/test or scripts/dev once (npm ci)")
    return found


def check_version(pkg: Path, wanted: str) -> None:
    have = json.loads((pkg / "package.json").read_text())["version"]
    if have != wanted:
        raise BundleError(f"npm pyodide is {have}, but the patch list is for {wanted} (scripts/workerd/pyodide_patches.json)")


def capnp_program(work: Path) -> str:
    modules = [("pyodide.asm", "src", "pyodide.asm.mjs"), ("pyodide.asm.wasm", "wasm", "pyodide.asm.wasm"),
               ("python_stdlib.zip", "data", "python_stdlib.zip")]
    items = ",\n  ".join(f'(name = "{PREFIX}{name}", {field} = embed "{file}", type = internal)'
                         for name, field, file in modules)
    return f'@0xe1a7c3b59d2f4a61;\nusing B = import "jsg_bundle.capnp";\nconst bundle :B.Bundle = (modules = [\n  {items}\n]);\n'


def inputs_digest(pkg: Path) -> str:
    h = hashlib.sha256()
    for path in (PATCHES, SCHEMA, HERE / "pyodide_bundle.py", pkg / "package.json"):
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def build(out_dir: Path = DEFAULT_OUT, name: str = "dev") -> Path:
    """Write out_dir/pyodide_<name>.capnp.bin unless an identical build is there."""
    patches = json.loads(PATCHES.read_text())
    pkg = pyodide_dir()
    check_version(pkg, patches["pyodide"])
    target = out_dir / f"pyodide_{name}.capnp.bin"
    stamp = target.with_suffix(".stamp")
    digest = inputs_digest(pkg)
    if target.is_file() and stamp.is_file() and stamp.read_text() == digest:
        return target
    capnp = shutil.which("capnp")
    if capnp is None:
        raise BundleError("capnp is not installed (Debian package capnproto; scripts/_bootstrap.sh installs it)")
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "pyodide.asm.mjs").write_text(patch_glue((pkg / "pyodide.asm.mjs").read_text(), patches["replacements"]))
        for file in ("pyodide.asm.wasm", "python_stdlib.zip"):
            shutil.copyfile(pkg / file, work / file)
        shutil.copyfile(SCHEMA, work / "jsg_bundle.capnp")
        (work / "runtime.capnp").write_text(capnp_program(work))
        with open(work / "out.bin", "wb") as out:
            done = subprocess.run([capnp, "eval", "-I", str(work), "--binary", str(work / "runtime.capnp"), "bundle"],
                                  cwd=work, stdout=out, stderr=subprocess.PIPE, text=False)
        if done.returncode != 0:
            raise BundleError(f"capnp eval failed: {done.stderr.decode(errors='replace')[-2000:]}")
        shutil.move(str(work / "out.bin"), target)
    stamp.write_text(digest)
    return target


def sri_sha256(path: Path) -> str:
    """The checksum in the form workerd prints when it rejects a release bundle."""
    return "sha256-" + base64.b64encode(hashlib.sha256(path.read_bytes()).digest()).decode()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--name", default="dev", help="bundle name: dev, or a release name such as 314.0.6_2026-08-17_11")
    args = parser.parse_args(argv)
    try:
        target = build(args.out, args.name)
    except BundleError as err:
        print(f"pyodide bundle: {err}", file=sys.stderr)
        return 1
    print(f"{target} {sri_sha256(target)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
