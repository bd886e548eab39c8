"""Real workerd as a test runtime: `scripts/dev --workerd` serving the dry-run bundle.

Why the dry-run bundle: what `wrangler deploy` would upload is the thing to prove,
not the source tree. It is built once per test process (`wrangler deploy
--dry-run --outdir`), then every workerd edge serves it with the test's own
wrangler.toml, state folder and origin.
"""
from __future__ import annotations

import sys
from pathlib import Path

from tests.edge_process import EdgeProcess

ROOT = Path(__file__).resolve().parent.parent
_BUNDLE: Path | None = None


def dry_run_bundle() -> Path:
    """The `wrangler deploy --dry-run` output of this checkout, built once per process."""
    global _BUNDLE
    if _BUNDLE is None:
        from scripts.workerd import dry_run
        _BUNDLE, _ = dry_run.build()
    return _BUNDLE


class WorkerdEdge(EdgeProcess):
    """`scripts/dev --workerd` serving the dry-run bundle as deployed (no preflight refusal: a
    deployed Worker cannot refuse to start); `.url` once started. Its process group holds the
    launcher, wrangler and both workerd processes: kill() ends them all."""

    what = "workerd"

    def __init__(self, config: Path, state: Path, origin: str | None, extra: tuple[str, ...] = ()) -> None:
        super().__init__(config, state, origin or "none", extra, startup_timeout_s=120.0)
        self.log_path = self.state.parent / f"{self.state.name}-workerd.log"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "scripts.workerd.dev", "--bundle", str(dry_run_bundle()), "--as-deployed",
                "--config", str(self.config), "--state", str(self.state), "--port", "0", "--origin", self.origin,
                "--quiet", "--no-build", "--no-crons", *self.extra_args]

    def log_text(self) -> str:
        text = super().log_text()
        wrangler_log = self.state / "workerd.log"
        if wrangler_log.exists():
            text += "\n--- wrangler dev ---\n" + wrangler_log.read_text(errors="replace")
        return text
