"""Fixtures shared by every test area: free loopback ports, the runtime parameter
(local CPython runtime or real workerd), and the edge as a child process that a
test can stop, SIGKILL and restart on the same state folder (tests/edge_process.py).

Generic on purpose: the config, the state folder and the origin are the
caller's; nothing here knows about rules or routes.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Iterator

import pytest

from tests.edge_process import EdgeProcess

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
