"""Real third-party servers (nginx, Caddy, Prometheus, Alertmanager) on free
loopback ports, started and stopped by the test that needs them.

The shipped configurations under integrations/ are used as they are; only the
lines marked `# EDIT <name>` (addresses, secrets) are rewritten, so a test
never runs a hand-kept copy of what users copy.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Mapping, Sequence

import pytest

ROOT = Path(__file__).resolve().parents[2]
INTEGRATIONS = ROOT / "integrations"


def need_program(name: str, package: str) -> str:
    """The program's path; a test that cannot run fails loudly in CI and skips, named, elsewhere."""
    path = shutil.which(name)
    if path is None:
        message = (f"{name.upper()} MISSING: this integration is NOT tested. Install Debian package "
                   f"`{package}` (scripts/_bootstrap.sh does it as root, from scripts/apt-packages.txt).")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def edit_marked(text: str, edits: Mapping[str, str]) -> str:
    """Replace each line marked `# EDIT <name>` by `edits[name]` (indentation kept, the
    marker comment kept). Every name must mark exactly one line."""
    out = text
    for name, replacement in edits.items():
        pattern = re.compile(rf"^(?P<indent>[ \t]*)(?P<body>[^\n#]*?)(?P<comment>[ \t]*#[ \t]*EDIT {re.escape(name)}\b[^\n]*)$",
                             re.MULTILINE)
        found = pattern.findall(out)
        assert len(found) == 1, f"expected one line marked 'EDIT {name}', found {len(found)}"
        out = pattern.sub(lambda m: m["indent"] + replacement + m["comment"], out)
    return out


def wait_for_port(port: int, proc: subprocess.Popen, log: Path, timeout_s: float = 20.0) -> None:
    """Poll until something accepts on 127.0.0.1:`port` (or the process died)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}: {log.read_text(errors='replace')[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"{proc.args[0]} did not listen on {port}: {log.read_text(errors='replace')[-3000:]}")


class Program:
    """One server process; `stop()` ends it (SIGTERM, then SIGKILL) and only it."""

    def __init__(self, argv: Sequence[str], port: int, log: Path, cwd: Path | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        self.argv, self.port, self.log = list(argv), port, log
        self.cwd, self.env = cwd, env
        self.proc: subprocess.Popen | None = None
        self.url = f"http://127.0.0.1:{port}"

    def start(self) -> "Program":
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.cwd,
                                         env={**os.environ, **(self.env or {})}, start_new_session=True)
        wait_for_port(self.port, self.proc, self.log)
        return self

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def __enter__(self) -> "Program":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
