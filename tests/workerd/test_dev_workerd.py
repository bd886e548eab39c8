"""`scripts/dev --workerd` as a user runs it: the repo's own wrangler.toml, the embedded
echo origin, and the banner's three curl lines run as printed, against real workerd."""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from scripts.workerd import toolchain

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def dev_workerd(tmp_path):
    """scripts/dev --workerd on a free port with its own state folder; stopped after the test."""
    if shutil.which("curl") is None:
        pytest.fail("curl is needed to run the banner's lines (Debian package curl)")
    proc = subprocess.Popen([str(ROOT / "scripts" / "dev"), "--workerd", "--port", "0", "--state", str(tmp_path / "state"),
                             "--no-crons"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, env=toolchain.node_path_env())
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("workerd: listening on "):
                break
        assert lines and lines[-1].startswith("workerd: listening on "), "\n".join(lines[-40:])
        yield lines
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def curl_lines(banner: list[str]) -> list[str]:
    at = banner.index("Try:")
    return [l.strip().split("   #", 1)[0] for l in banner[at + 1:at + 4]]


def run(line: str) -> str:
    shell_line = line.replace("; echo", "")
    done = subprocess.run(["bash", "-c", shell_line], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_dev_workerd_serves_the_repo_config_and_the_banners_curl_lines_work(dev_workerd):
    banner = dev_workerd     # after "created .dev.vars ..." on a fresh clone
    assert any(line.startswith("Tollgate on workerd (wrangler dev): tollgate") for line in banner), banner
    assert any("/cdn-cgi/local/scheduled?cron=" in l for l in banner), "the cron line names the route that works"
    first, burst, allow = curl_lines(banner)
    out = run(first)
    assert out.startswith("HTTP/1.1 200") and "RateLimit-Policy:" in out and '"path": "/v1/search"' in out, out
    statuses = run(burst).split()
    # the sample's burst rule admits 40 at once and refills 20/s; 80 sent 20 at a time: 40 pass, and
    # how many of the rest the refill lets through depends on the machine's speed, but not all
    assert len(statuses) == 80 and statuses.count("200") >= 40 and statuses.count("429") >= 1, statuses
    assert set(statuses) <= {"200", "429"}, statuses
    out = run(allow)
    assert re.match(r"HTTP/1.1 (200|429)", out) and "RateLimit:" in out, out


RULES_ONLY = '''name = "my-rules"
main = "build/edge/worker/entry.py"
base_dir = "build/edge"
compatibility_date = "2026-10-01"
compatibility_flags = ["python_workers"]
[build]
command = "python3 scripts/stage_bundle.py"
[[durable_objects.bindings]]
name = "BUCKETS"
class_name = "ClientBucket"
[[durable_objects.bindings]]
name = "OUTBOX"
class_name = "SnapshotOutbox"
[[migrations]]
tag = "v1"
new_sqlite_classes = ["ClientBucket", "SnapshotOutbox"]
[vars.TOLLGATE]
identity = ["header:x-api-key"]
[[vars.TOLLGATE.rules]]
name = "tiny"
limit = "%s"
algorithm = "fixed_window"
'''


def _dev(config: Path, state: Path) -> subprocess.CompletedProcess | subprocess.Popen:
    return subprocess.Popen([str(ROOT / "scripts" / "dev"), "--workerd", "--config", str(config), "--port", "0",
                             "--state", str(state), "--no-crons", "--origin", "none"], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                            env=toolchain.node_path_env())


def test_an_operators_rules_file_elsewhere_runs_with_the_repos_worker_on_workerd(tmp_path):
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / "wrangler.toml").write_text(RULES_ONLY % "2/day")
    proc = _dev(folder / "wrangler.toml", tmp_path / "state")
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("workerd: listening on "):
                break
        url = lines[-1].split("listening on ", 1)[1].strip()
        codes = [run(f"curl -s -o /dev/null -w '%{{http_code}} ' -H 'x-api-key: a' '{url}/__tollgate/allow'")
                 for _ in range(3)]
        assert codes == ["200 ", "200 ", "429 "], (codes, "".join(lines[-30:]))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)


def test_an_invalid_config_refuses_to_start_on_workerd_too(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "wrangler.toml").write_text(RULES_ONLY % "100/minnute")
    proc = _dev(folder / "wrangler.toml", tmp_path / "state")
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 2, out
    assert "TOLLGATE.rules[0].limit" in out and "minute" in out and "listening" not in out, out
