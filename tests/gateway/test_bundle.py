"""The bundle `wrangler deploy --dry-run` writes holds exactly the Worker's modules plus
the vendored `workers` SDK, and served from its own folder by the local runtime it
answers requests. (Real workerd serves this same dry-run bundle in every workerd test:
tests/workerd_edge.py.)"""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from pathlib import Path

import aiohttp
import pytest

from scripts.stage_bundle import edge_modules
from scripts.vendor_sdk import pinned_wheels
from tests.gateway.support import Origin, write_config

pytestmark = pytest.mark.local_only("checks the bundle's files and runs it on the local runtime; "
                                    "every workerd test already serves this dry-run bundle")

ROOT = Path(__file__).resolve().parents[2]
WRANGLER = ROOT / "node_modules" / ".bin" / "wrangler"
TOLLGATE = {"identity": ["header:x-api-key"],
            "rules": [{"name": "daily", "limit": "50/day", "algorithm": "fixed_window"}]}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    if shutil.which("node") is None:
        pytest.skip("node is not installed: wrangler cannot build the bundle (scripts/test installs it when present)")
    if not WRANGLER.exists():
        pytest.skip("node_modules/.bin/wrangler missing: run `npm ci` (scripts/_bootstrap.sh does)")
    out = tmp_path_factory.mktemp("bundle")
    done = subprocess.run([str(WRANGLER), "deploy", "--dry-run", "--outdir", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=180,
                          env={**os.environ, "WRANGLER_SEND_METRICS": "false", "NO_COLOR": "1", "CI": "1"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


def test_bundle_holds_exactly_the_edge_modules_and_the_vendored_sdk(bundle):
    shipped = sorted(str(p.relative_to(bundle)) for p in bundle.rglob("*.py")
                     if not p.relative_to(bundle).parts[0] == "python_modules")
    main = Path("worker/entry.py")
    expected = sorted(["entry.py"] + [str(p) for p in edge_modules() if p != main])
    assert shipped == expected
    # Since 2026-04-21 the runtime carries no `workers` SDK: the bundle must (workerd-offline.md).
    vendored = bundle / "python_modules"
    assert (vendored / "workers" / "__init__.py").is_file() and (vendored / "workers" / "entrypoints.py").is_file()
    (pin, _), = pinned_wheels()
    name, version = pin.split("==")
    assert (vendored / f"{name.replace('-', '_')}-{version}.dist-info").is_dir()
    assert not any(part.startswith(("tests", "scripts", "localedge", ".venv", "node_modules"))
                   for p in shipped for part in Path(p).parts)


def test_the_bundle_serves_from_its_own_folder(bundle, tmp_path, edge_process):
    config = write_config(tmp_path / "cfg", TOLLGATE, main=bundle / "entry.py", base_dir=bundle)
    with Origin() as origin:
        edge = edge_process(config, tmp_path / "state", origin=origin.url,
                            launcher=(str(ROOT / "tests" / "gateway" / "bundle_launcher.py"), str(bundle)))
        modules = json.loads(next(line for line in edge.banner if line.startswith("modules "))[8:])
        assert all(Path(f).resolve().is_relative_to(bundle.resolve()) for f in modules.values()), modules

        async def go():
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{edge.url}/v1/hello?x=1", headers={"X-Api-Key": "alice"}) as r:
                    forwarded = (r.status, r.headers.get("RateLimit"), json.loads(await r.read()))
                async with http.get(f"{edge.url}/__tollgate/allow", headers={"X-Api-Key": "alice"}) as r:
                    decided = (r.status, r.headers.get("RateLimit"))
            return forwarded, decided
        forwarded, decided = asyncio.run(go())
    assert forwarded[0] == 201 and forwarded[1].startswith('"daily";r=49;') and forwarded[2]["query"] == "x=1"
    assert decided[0] == 200 and decided[1].startswith('"daily";r=48;')
