"""`python -m src.localedge` (what scripts/dev runs): .dev.vars creation, the banner, the demo origin."""
from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.runtime.conftest import FIXTURES, ROOT

RULES = '''
[vars.TOLLGATE]
identity = ["header:x-api-key", "ip"]

[[vars.TOLLGATE.rules]]
name = "burst"
limit = "5/second"
burst = 10

[[vars.TOLLGATE.rules]]
name = "daily"
limit = "100/day"
algorithm = "fixed_window"
'''


def _operator_config(tmp_path: Path) -> Path:
    """An operator's own folder: the fixture Worker, their rules, no .dev.vars yet."""
    folder = tmp_path / "mine"
    folder.mkdir()
    shutil.copy(FIXTURES / "basic" / "rt_basic_worker.py", folder / "rt_basic_worker.py")
    text = (FIXTURES / "basic" / "wrangler.toml").read_text()
    text = text.replace("[vars]\n", "[vars]\nORIGIN_URL = \"http://config-origin.invalid\"\n")
    (folder / "wrangler.toml").write_text(text + RULES)
    (folder / ".dev.vars.example").write_text("ADMIN_TOKEN=x\nALLOW_TOKEN=y\nIDENTITY_SECRET=z\n")
    return folder / "wrangler.toml"


def test_dev_creates_dev_vars_prints_bindings_rules_and_curl_lines_and_serves_the_echo_origin(tmp_path):
    config = _operator_config(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "src.localedge", "--config", str(config), "--port", "0",
                             "--state", str(tmp_path / "state"), "--no-crons"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("localedge: listening on "):
                break
        out = "\n".join(lines)
        url = lines[-1].split("listening on ", 1)[1]
        dev_vars = config.parent / ".dev.vars"
        assert f"created {dev_vars}" in out
        secrets = dict(line.split("=", 1) for line in dev_vars.read_text().splitlines() if "=" in line
                       and not line.startswith("#"))
        assert set(secrets) == {"ADMIN_TOKEN", "ALLOW_TOKEN", "IDENTITY_SECRET"}
        assert all(len(v) >= 24 for v in secrets.values())
        for value in secrets.values():
            assert value not in out  # secrets are never printed
        assert "env.COUNTERS" in out and "Durable Object namespace  Counter" in out and "env.DB" in out
        assert "burst      5/second       gcra, burst 10" in out
        assert "daily      100/day        fixed_window" in out
        curls = [line for line in lines if line.strip().startswith("curl ")]
        assert len(curls) == 3 and all("x-api-key: demo-key-1" in c for c in curls)
        assert "/__tollgate/allow" in curls[2] and "[1-20]" in curls[1]  # twice the burst: ends in 429s
        # the embedded echo origin replaced the config's ORIGIN_URL
        with urllib.request.urlopen(f"{url}/proxy", timeout=10) as r:
            echo = json.loads(r.read())
        assert (echo["method"], echo["path"], echo["body"]) == ("POST", "/x", "payload")
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0
    # a second start keeps the secrets it created
    assert ".dev.vars" in {p.name for p in config.parent.iterdir()}


def test_bad_config_is_a_clear_error_not_a_traceback(tmp_path):
    bad = tmp_path / "wrangler.toml"
    bad.write_text('name = "x"\nmain = "missing.py"\n[triggers]\ncrons = ["61 * * * *"]\n')
    done = subprocess.run([sys.executable, "-m", "src.localedge", "--config", str(bad), "--port", "0",
                           "--state", str(tmp_path / "s"), "--origin", "none"],
                          cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "triggers.crons[0]: '61 * * * *' is not a valid cron expression" in done.stderr
    assert "Traceback" not in done.stderr
