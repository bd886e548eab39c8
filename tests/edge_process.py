"""The edge as a child process: `python -m src.localedge` (or, in a subclass,
`scripts/dev --workerd`) serving one wrangler.toml on a free loopback port, which a
test can stop, SIGKILL and restart on the same state folder."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class EdgeProcess:
    """`python -m src.localedge` serving one wrangler.toml on a free loopback port, in a process
    group of its own (so kill() also ends whatever it started: workerd's subclass relies on it)."""

    what = "local runtime"

    def __init__(self, config: Path, state: Path, origin: str = "config", extra_args: tuple[str, ...] = (),
                 startup_timeout_s: float = 30.0, launcher: tuple[str, ...] = ("-m", "src.localedge")) -> None:
        self.config, self.state, self.origin = Path(config), Path(state), origin
        self.extra_args = extra_args
        self.launcher = launcher
        self.banner: list[str] = []   # stdout lines printed before "listening on"
        self.startup_timeout_s = startup_timeout_s
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.log_path = self.state.parent / f"{self.state.name}-edge.log"

    def command(self) -> list[str]:
        return [sys.executable, *self.launcher, "--config", str(self.config), "--state", str(self.state),
                "--port", "0", "--origin", self.origin, "--quiet", "--no-build", "--no-crons", *self.extra_args]

    def start(self) -> "EdgeProcess":
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command(), cwd=ROOT, stdout=subprocess.PIPE, stderr=log,
                                     start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        log.close()
        deadline = time.monotonic() + self.startup_timeout_s
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline().decode(errors="replace")
            if not line:
                break
            if "listening on " in line:
                self.url = line.strip().rsplit("listening on ", 1)[1]
                return self
            self.banner.append(line.rstrip("\n"))
        self.kill()
        raise RuntimeError(f"{self.what} did not start: {self.log_text()[-4000:]}")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL the whole group: no shutdown code runs, as when a machine dies."""
        self._signal_group(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        self._signal_group(signal.SIGKILL)   # anything it started and left behind
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()

    def _signal_group(self, sig: int) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass
