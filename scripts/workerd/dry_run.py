"""`wrangler deploy --dry-run --outdir`: the exact bundle `wrangler deploy` would upload.

The tests and `scripts/bench workerd` serve this output on real workerd, so what
they prove is the deployable bundle, not the source tree.
"""
from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

from scripts.workerd import toolchain

ROOT = Path(__file__).resolve().parents[2]
_UPLOAD = re.compile(r"Total Upload: ([\d.]+ KiB) / gzip: ([\d.]+ KiB)")


def build(out: Path | None = None) -> tuple[Path, str]:
    """(outdir, wrangler's "Total Upload: X KiB / gzip: Y KiB" figures) for this checkout."""
    toolchain.require_tools()
    out = out or Path(tempfile.mkdtemp(prefix="tollgate-dry-run-"))
    done = subprocess.run([str(toolchain.WRANGLER), "deploy", "--dry-run", "--outdir", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env=toolchain.wrangler_env(Path("/bin/false")))
    if done.returncode != 0:
        raise RuntimeError(f"wrangler deploy --dry-run failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    found = _UPLOAD.search(done.stdout)
    return out, (f"{found.group(1)} (gzip {found.group(2)})" if found else "size not reported")


def build_at(rev: str, out: Path) -> Path:
    """The dry-run bundle of another commit: a throwaway worktree of `rev`, its own [build]
    step (so its own vendored SDK), this checkout's pinned wrangler."""
    work = Path(tempfile.mkdtemp(prefix="tollgate-rev-"))
    subprocess.run(["git", "worktree", "add", "--detach", str(work), rev], cwd=ROOT, check=True,
                   capture_output=True, text=True)
    try:
        (work / "node_modules").symlink_to(ROOT / "node_modules")
        done = subprocess.run([str(toolchain.WRANGLER), "deploy", "--dry-run", "--outdir", str(out)], cwd=work,
                              capture_output=True, text=True, timeout=300,
                              env=toolchain.wrangler_env(Path("/bin/false")))
        if done.returncode != 0:
            raise RuntimeError(f"wrangler deploy --dry-run at {rev} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        return out
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(work)], cwd=ROOT, capture_output=True)
