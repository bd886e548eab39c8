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


# ------------------------------------------------------------------ Tollgate's own Worker
def _repo_config_elsewhere(tmp_path: Path, edit=lambda text: text) -> Path:
    """The README's case: the repo's wrangler.toml copied to a folder of its own and edited."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / "wrangler.toml").write_text(edit((ROOT / "wrangler.toml").read_text()))
    return folder / "wrangler.toml"


def _dev(config: Path, state: Path, *extra: str, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "src.localedge", "--config", str(config), "--port", "0",
                           "--state", str(state), "--origin", "none", "--no-crons", *extra],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_an_invalid_tollgate_config_refuses_to_start_listing_every_error(tmp_path):
    def breaking(text: str) -> str:
        return (text.replace('limit = "20/second"', 'limit = "20/secnd"')
                    .replace('on_error = "closed"', 'on_error = "closd"')
                    .replace('"POST /v1/search" = 5', '"POST /v1/search" = 500'))
    done = _dev(_repo_config_elsewhere(tmp_path, breaking), tmp_path / "state")
    assert done.returncode == 2, done.stdout + done.stderr
    err = done.stderr
    for piece in ('TOLLGATE.rules[0].limit: "20/secnd" is not a rate', 'did you mean "20/second"',
                  "TOLLGATE.rules[2].on_error: expected open | closed, got 'closd' (did you mean \"closed\"?)",
                  'TOLLGATE.costs."POST /v1/search": cost 500 exceeds rule "search", which admits at most 100'):
        assert piece in err, (piece, err)
    assert "3 error(s)" in err and "listening" not in done.stdout and "Traceback" not in err


def test_a_config_without_the_bucket_binding_refuses_to_start(tmp_path):
    def unbound(text: str) -> str:
        return text.replace('[[durable_objects.bindings]]\nname = "BUCKETS"\nclass_name = "ClientBucket"\n', "")
    done = _dev(_repo_config_elsewhere(tmp_path, unbound), tmp_path / "state")
    assert done.returncode == 2
    assert "BUCKETS: no Durable Object binding named BUCKETS" in done.stderr, done.stderr


def test_a_rules_file_elsewhere_runs_with_the_repos_worker_and_its_own_secrets(tmp_path, processes):
    config = _repo_config_elsewhere(tmp_path, lambda t: t.replace('limit = "20/second"', 'limit = "7/second"'))
    edge = processes(tmp_path / "state", config).start(timeout=90)
    with urllib.request.urlopen(f"{edge.url}/__tollgate/health", timeout=10) as r:
        assert json.loads(r.read())["rules"] == 4
    req = urllib.request.Request(f"{edge.url}/__tollgate/allow", headers={"X-Api-Key": "alice"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.headers["RateLimit-Policy"].startswith('"burst";q=40;w=6'), "the copied file's 7/second"
    assert (config.parent / ".dev.vars").is_file(), "secrets live beside the operator's file"
    assert edge.stop() == 0


def test_a_changed_identity_secret_is_said_loudly_at_start(tmp_path, processes):
    config = _repo_config_elsewhere(tmp_path)
    (config.parent / ".dev.vars").write_text("IDENTITY_SECRET=first-secret\n")
    first = processes(tmp_path / "state", config).start(timeout=90)
    urllib.request.urlopen(f"{first.url}/__tollgate/health", timeout=10).close()
    assert first.stop() == 0 and "IDENTITY_SECRET" not in first.stderr()
    (config.parent / ".dev.vars").write_text("IDENTITY_SECRET=second-secret\n")
    second = processes(tmp_path / "state", config).start(timeout=90)
    second.stop()
    warning = second.stderr()
    assert "IDENTITY_SECRET in" in warning and "is not the one" in warning and "orphaned" in warning
    assert "first-secret" not in warning and "second-secret" not in warning
