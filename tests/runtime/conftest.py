"""Helpers for the local-runtime tests: the fixture Worker in-process or as a subprocess."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
BASIC = FIXTURES / "basic" / "wrangler.toml"


def run(coro: Any) -> Any:
    """Run one test coroutine on a fresh event loop."""
    return asyncio.run(coro)


@asynccontextmanager
async def edge(state: Path, config: Path = BASIC, **kwargs: Any) -> AsyncIterator[Any]:
    from src.localedge.runtime import LocalEdge

    kwargs.setdefault("port", 0)
    kwargs.setdefault("crons", False)
    async with LocalEdge(config, state, **kwargs) as running:
        yield running


class EdgeProcess:
    """`python -m src.localedge` in a child process on a free port (for restarts and SIGKILL)."""

    def __init__(self, state: Path, config: Path = BASIC, *args: str) -> None:
        self.state, self.config, self.args = state, config, args
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def start(self, timeout: float = 20.0) -> "EdgeProcess":
        cmd = [sys.executable, "-m", "src.localedge", "--config", str(self.config), "--port", "0",
               "--state", str(self.state), "--origin", "none", "--no-crons", "--quiet", *self.args]
        self.log = open(self.state.parent / f"edge-{os.getpid()}-{time.monotonic_ns()}.log", "w+")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=self.log, text=True)
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            if line.startswith("localedge: listening on "):
                self.url = line.split("listening on ", 1)[1].strip()
                return self
        self.kill()
        self.log.seek(0)
        raise RuntimeError(f"local runtime did not start:\n{self.log.read()}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            return self.proc.wait(15)
        return self.proc.returncode

    def stderr(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def processes():
    started: list[EdgeProcess] = []

    def make(state: Path, config: Path = BASIC, *args: str) -> EdgeProcess:
        p = EdgeProcess(state, config, *args)
        started.append(p)
        return p

    yield make
    for p in started:
        p.kill()
