"""Run the core test suite with pytest inside Pyodide (phase A of the harness).

The core is synchronous and pure, so pytest.main runs it directly; nothing here
awaits JavaScript. Returns a JSON summary the harness prints.
"""
from __future__ import annotations

import json
import os

import pytest


class _Counts:
    """Collects outcomes per test (setup/call/teardown failures all count as failed)."""

    def __init__(self) -> None:
        self.outcomes: dict[str, str] = {}

    def pytest_runtest_logreport(self, report) -> None:
        if report.failed:
            self.outcomes[report.nodeid] = "failed"
        elif report.skipped:
            self.outcomes.setdefault(report.nodeid, "skipped")
        elif report.when == "call":
            self.outcomes.setdefault(report.nodeid, "passed")

    def pytest_configure(self, config) -> None:
        # Imported here, not before pytest.main, so pytest can still rewrite its asserts.
        try:
            from hypothesis import settings
        except ImportError:
            return
        settings.register_profile("pyodide-conformance", parent=settings.default, deadline=None)
        settings.load_profile("pyodide-conformance")

    def pytest_collection_modifyitems(self, config, items) -> None:
        # A test module that imports subprocess drives a host program (e.g. scripts/bench core
        # with CPython-only peers); Pyodide, like Workers, cannot start processes.
        import subprocess

        skip = pytest.mark.skip(reason="starts a process: Pyodide, like Workers, has none")
        for item in items:
            module = getattr(item, "module", None)
            if module is not None and subprocess in vars(module).values():
                item.add_marker(skip)

    def pytest_collectreport(self, report) -> None:
        if report.failed:
            self.outcomes[report.nodeid or "<collection>"] = "failed"


def run(test_dir: str, rootdir: str) -> str:
    # Hypothesis keeps its example database under the working directory by default:
    # keep it in Pyodide's in-memory /tmp, and give up on per-example deadlines, which
    # measure wall time on an interpreter that is several times slower than CPython.
    os.environ["HYPOTHESIS_STORAGE_DIRECTORY"] = "/tmp/hypothesis"
    counts = _Counts()
    code = pytest.main(
        [test_dir, f"--rootdir={rootdir}", "-q", "-p", "no:cacheprovider",
         "-W", "ignore::pytest.PytestConfigWarning"],  # pyproject's `timeout` needs pytest-timeout
        plugins=[counts],
    )
    tally = {"passed": 0, "failed": 0, "skipped": 0}
    for outcome in counts.outcomes.values():
        tally[outcome] += 1
    failed = sorted(k for k, v in counts.outcomes.items() if v == "failed")
    return json.dumps({"exit": int(code), **tally, "failed_tests": failed})
