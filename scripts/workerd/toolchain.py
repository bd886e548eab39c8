"""Where the pinned Node tooling lives, and the workerd wrapper wrangler dev runs.

Why a wrapper: miniflare starts workerd as `workerd serve --binary --experimental
... -` and takes the binary from MINIFLARE_WORKERD_PATH when set
(node_modules/miniflare/dist/src/index.js, getRuntimeCommand). Our wrapper adds
`--pyodide-bundle-disk-cache-dir`, so workerd finds the Pyodide runtime bundle we
built offline instead of downloading it (workerd-offline.md).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from scripts.workerd import pyodide_bundle

ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = ROOT / "node_modules"
WRANGLER = NODE_MODULES / ".bin" / "wrangler"
WORKERD = NODE_MODULES / "@cloudflare" / "workerd-linux-64" / "bin" / "workerd"
NODE22 = ROOT / ".cache" / "node22" / "node_modules" / ".bin"


class ToolchainError(RuntimeError):
    """A pinned tool is missing; the message says how to get it."""


def node_path_env() -> dict[str, str]:
    """os.environ with the pinned Node 22 first on PATH when the bootstrap installed it."""
    env = dict(os.environ)
    if (NODE22 / "node").is_file():
        env["PATH"] = f"{NODE22}{os.pathsep}{env.get('PATH', '')}"
    env["PATH"] = f"{NODE_MODULES / '.bin'}{os.pathsep}{env['PATH']}"
    return env


def require_tools() -> None:
    for tool in (WRANGLER, WORKERD):
        if not tool.exists():
            raise ToolchainError(f"{tool} is missing: run scripts/dev once without --no-build "
                                 "(scripts/_bootstrap.sh installs the pinned npm packages)")
    if shutil.which("node", path=node_path_env()["PATH"]) is None:
        raise ToolchainError("node is not installed: scripts/_bootstrap.sh installs Node 22 from the npm registry")


def workerd_wrapper(folder: Path) -> Path:
    """A two-line script that runs the pinned workerd with our Pyodide bundle folder."""
    bundles = pyodide_bundle.build().parent
    wrapper = folder / "workerd"
    text = f'#!/bin/sh\nexec "{WORKERD}" "$@" --pyodide-bundle-disk-cache-dir="{bundles}"\n'
    folder.mkdir(parents=True, exist_ok=True)
    if not wrapper.is_file() or wrapper.read_text() != text:
        tmp = wrapper.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.chmod(0o755)
        os.replace(tmp, wrapper)
    return wrapper


def wrangler_env(wrapper: Path) -> dict[str, str]:
    """The environment for `wrangler dev`: our workerd, nothing sent anywhere.

    CLOUDFLARE_CF_FETCH_ENABLED=false stops miniflare fetching the `Request.cf`
    object from Cloudflare at start (miniflare's setupCf, same file as above);
    the Worker then gets miniflare's placeholder `cf`.
    """
    env = node_path_env()
    env.update({"MINIFLARE_WORKERD_PATH": str(wrapper), "CLOUDFLARE_CF_FETCH_ENABLED": "false",
                "WRANGLER_SEND_METRICS": "false", "NO_COLOR": "1", "CI": "1", "FORCE_COLOR": "0"})
    return env
