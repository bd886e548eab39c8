"""Real workerd as a test runtime: `scripts/dev --workerd` serving the dry-run bundle.

Why the dry-run bundle: what `wrangler deploy` would upload is the thing to prove,
not the source tree. It is built once per test process (`wrangler deploy
--dry-run --outdir`), then every workerd edge serves it with the test's own
wrangler.toml, state folder and origin.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_BUNDLE: Path | None = None


def dry_run_bundle() -> Path:
    """The `wrangler deploy --dry-run` output of this checkout, built once per process."""
    global _BUNDLE
    if _BUNDLE is None:
        from scripts.workerd import dry_run
        _BUNDLE, _ = dry_run.build()
    return _BUNDLE


def workerd_command(config: Path, state: Path, origin: str, extra: tuple[str, ...] = ()) -> list[str]:
    return [sys.executable, "-m", "scripts.workerd.dev", "--bundle", str(dry_run_bundle()), "--config", str(config),
            "--state", str(state), "--port", "0", "--origin", origin, "--quiet", "--no-build", "--no-crons", *extra]


class WorkerdEdge:
    """One `scripts/dev --workerd` process group; `.url` once started."""

    def __init__(self, config: Path, state: Path, origin: str | None, extra: tuple[str, ...] = ()) -> None:
        self.cmd = workerd_command(config, state, origin or "none", extra)
        self.log_path = Path(state).parent / f"{Path(state).name}-workerd.log"
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def start(self, timeout_s: float = 120.0) -> "WorkerdEdge":
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=log, start_new_session=True,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})
        log.close()
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline().decode(errors="replace")
            if not line:
                break
            if "listening on " in line:
                self.url = line.strip().rsplit("listening on ", 1)[1]
                return self
        self.kill()
        raise RuntimeError(f"workerd did not start: {self.log_text()[-4000:]}")

    def log_text(self) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        wrangler_log = Path(self.cmd[self.cmd.index("--state") + 1]) / "workerd.log"
        if wrangler_log.exists():
            text += "\n--- wrangler dev ---\n" + wrangler_log.read_text(errors="replace")
        return text

    def kill(self) -> None:
        """SIGKILL the whole group (launcher, wrangler, workerd): no shutdown code runs."""
        self._signal_group(signal.SIGKILL)

    def stop(self) -> None:
        self._signal_group(signal.SIGTERM)
        try:
            if self.proc is not None:
                self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
        self._signal_group(signal.SIGKILL)   # anything wrangler left behind
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()

    def _signal_group(self, sig: int) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            return
        if sig == signal.SIGKILL:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
