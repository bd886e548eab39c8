"""Fixtures shared by every test area: free loopback ports and the local edge
runtime (`python -m src.localedge`) as a child process that a test can stop,
SIGKILL and restart on the same state folder.

Generic on purpose: the config, the state folder and the origin are the
caller's; nothing here knows about rules or routes.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EdgeProcess:
    """`python -m src.localedge` serving one wrangler.toml on a free loopback port."""

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

    def start(self) -> "EdgeProcess":
        cmd = [sys.executable, *self.launcher, "--config", str(self.config), "--state", str(self.state),
               "--port", "0", "--origin", self.origin, "--quiet", "--no-build", "--no-crons", *self.extra_args]
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=log,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})
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
        raise RuntimeError(f"local runtime did not start: {self.log_text()[-3000:]}")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as when a machine dies."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()


RUNTIMES = ("local", "workerd")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "local_only(reason): runs on the local runtime only; the reason says why "
                            "(a difference from workerd written down, or a test of the local runtime itself)")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that takes `runtime` runs on both runtimes, unless marked local_only.

    TOLLGATE_RUNTIMES=local (or workerd) narrows a run by hand; scripts/test runs both."""
    if "runtime" not in metafunc.fixturenames:
        return
    wanted = [r for r in os.environ.get("TOLLGATE_RUNTIMES", ",".join(RUNTIMES)).split(",") if r in RUNTIMES]
    if metafunc.definition.get_closest_marker("local_only"):
        wanted = [r for r in wanted if r == "local"]
    metafunc.parametrize("runtime", wanted)


def runtime_of(request: pytest.FixtureRequest) -> str:
    """The runtime this test was parametrized with ("local" when it takes none)."""
    callspec = getattr(request.node, "callspec", None)
    return callspec.params.get("runtime", "local") if callspec else "local"


@pytest.fixture
def edge_process(request: pytest.FixtureRequest) -> Iterator:
    """Factory: `edge_process(config, state, origin="config")` → a started edge process on the
    test's runtime (local CPython, or real workerd for a test parametrized with it), stopped after
    the test. `.url`, `.kill()` (SIGKILL), `.stop()`, `.log_text()`."""
    started: list = []
    on_workerd = runtime_of(request) == "workerd"

    def start(config: Path, state: Path, origin: str = "config", extra_args: tuple[str, ...] = (),
              launcher: tuple[str, ...] = ("-m", "src.localedge")):
        if on_workerd:
            from tests.workerd_edge import WorkerdEdge
            edge = WorkerdEdge(config, state, origin, extra_args).start()
        else:
            edge = EdgeProcess(config, state, origin, extra_args, launcher=launcher).start()
        started.append(edge)
        return edge

    yield start
    for edge in started:
        edge.stop()
