"""The Pyodide runtime bundle we build for workerd: the modules workerd asks for, every
patch applied, and a clear error when the pinned pyodide no longer matches the patches."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts.workerd import pyodide_bundle

HERE = Path(__file__).resolve().parent


def test_every_patch_applies_to_the_pinned_glue_and_the_bundle_is_written(tmp_path):
    patches = json.loads(Path(pyodide_bundle.PATCHES).read_text())["replacements"]
    glue = (pyodide_bundle.pyodide_dir() / "pyodide.asm.mjs").read_text()
    patched = pyodide_bundle.patch_glue(glue, patches)
    assert 'from "pyodide-internal:builtin_wrappers";' in patched      # the prelude went in
    assert "new WebAssembly.Module" not in patched and "crypto.getRandomValues(" not in patched
    assert "export { _createPyodideModule };" in patched
    target = pyodide_bundle.build(tmp_path, "dev")
    # workerd loads it in every [workerd] test; here: it holds the three inputs, whole
    inputs = sum((pyodide_bundle.pyodide_dir() / f).stat().st_size for f in ("pyodide.asm.wasm", "python_stdlib.zip"))
    assert target.name == "pyodide_dev.capnp.bin" and target.stat().st_size > inputs + len(glue)
    assert pyodide_bundle.sri_sha256(target).startswith("sha256-")


def test_a_patch_that_no_longer_applies_is_an_error_naming_it():
    with pytest.raises(pyodide_bundle.BundleError, match="not found in pyodide.asm.mjs: 'Date.now'"):
        pyodide_bundle.patch_glue("no clock here", [{"find": "Date.now", "replace": "x", "why": "the clock"}])


def test_the_patch_list_is_for_the_pinned_pyodide():
    pinned = json.loads((HERE.parents[1] / "package.json").read_text())["devDependencies"]["pyodide"]
    patches = json.loads(Path(pyodide_bundle.PATCHES).read_text())
    assert patches["pyodide"] == pinned
    assert all({"why", "find", "replace"} <= set(p) for p in patches["replacements"])
