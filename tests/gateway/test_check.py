"""`scripts/check`: a wrangler.toml that could never work is refused before it runs or deploys."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from src.localedge.check import check_file
from tests.gateway.support import ROOT

BROKEN_RULES = '''
[vars.TOLLGATE]
identity = ["header:x-api-key", "cookie"]
[[vars.TOLLGATE.rules]]
name = "burst"
limit = "100/minnute"
[[vars.TOLLGATE.rules]]
name = "small"
limit = "5/second"
[vars.TOLLGATE.costs]
"POST /v1/export" = 10
'''


def shipped_without(section: str) -> str:
    """The repo's wrangler.toml with one binding table left out."""
    text = (ROOT / "wrangler.toml").read_text()
    start = text.index(section)
    end = text.index("\n[", start + len(section))
    return text[:start] + text[end + 1:]


def write(folder: Path, text: str, dev_vars: str = "IDENTITY_SECRET=s\n") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ".dev.vars").write_text(dev_vars)
    path = folder / "wrangler.toml"
    path.write_text(text)
    return path


def run_check(path: Path) -> subprocess.CompletedProcess:
    # a bare interpreter, as the [build] step has: no virtual environment, no aiohttp
    return subprocess.run([sys.executable, "-S", str(ROOT / "scripts" / "check"), "--config", str(path)],
                          capture_output=True, text=True, timeout=60)


def test_the_shipped_config_passes_and_says_what_it_would_deploy():
    done = run_check(ROOT / "wrangler.toml")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "OK" in out.splitlines()[0]
    for piece in ("durable object BUCKETS -> ClientBucket", "d1 USAGE_DB -> tollgate-usage",
                  "rule burst: 20/second, gcra, capacity 40", "secret IDENTITY_SECRET:", "overrides: 1 clients"):
        assert piece in out, piece
    assert "partner-key-123" not in out, "override keys are API keys: never printed"


def test_broken_rules_list_every_error_with_its_field_path(tmp_path):
    text = (ROOT / "wrangler.toml").read_text().split("[vars.TOLLGATE]")[0] + BROKEN_RULES
    done = run_check(write(tmp_path, text))
    assert done.returncode == 1
    err = done.stderr
    for piece in ('TOLLGATE.identity[1]: "cookie" is not an identity source',
                  'TOLLGATE.rules[0].limit: "100/minnute" is not a rate', 'did you mean "100/minute"',
                  'TOLLGATE.costs."POST /v1/export": cost 10 exceeds rule "small", which admits at most 5'):
        assert piece in err, (piece, err)
    assert "would deploy" not in done.stdout


def test_a_missing_durable_object_binding_is_an_error_not_a_fail_open(tmp_path):
    report = check_file(write(tmp_path / "a", shipped_without('[[durable_objects.bindings]]\nname = "BUCKETS"')))
    assert [e for e in report.errors if e.startswith("BUCKETS: no Durable Object binding named BUCKETS")], report.errors
    assert len([e for e in report.errors if e.startswith("BUCKETS:")]) == 1, "named once"
    report = check_file(write(tmp_path / "b", shipped_without("[[d1_databases]]")))
    assert report.ok and any(w.startswith("USAGE_DB:") for w in report.warnings), "limits still work: a warning"
    report = check_file(write(tmp_path / "c", shipped_without("[[migrations]]")))
    assert any("class ClientBucket has no migration" in e for e in report.errors), report.errors


def test_the_store_var_is_read_as_the_worker_reads_it(tmp_path):
    """`SNAPSHOT_STORE = "HTTP"` is the HTTP sink to the Worker (worker/stores.store_kind), so the
    check asks for its URL instead of calling the value unknown."""
    shipped = (ROOT / "wrangler.toml").read_text()
    report = check_file(write(tmp_path, shipped.replace('SNAPSHOT_STORE = "d1"', 'SNAPSHOT_STORE = " HTTP"', 1)))
    assert [e for e in report.errors if e.startswith("SNAPSHOT_SINK_URL:")], report.errors
    assert not [e for e in report.errors if e.startswith("SNAPSHOT_STORE:")], report.errors
    report = check_file(write(tmp_path, shipped.replace('SNAPSHOT_STORE = "d1"', 'SNAPSHOT_STORE = "s3"', 1)))
    assert 'SNAPSHOT_STORE: expected "d1" or "http", got \'s3\'' in report.errors, report.errors


def test_secrets_are_named_never_shown(tmp_path):
    report = check_file(write(tmp_path, (ROOT / "wrangler.toml").read_text(), dev_vars="ADMIN_TOKEN=hunter2\n"))
    assert report.ok, report.errors
    assert any("IDENTITY_SECRET" in w and "wrangler secret put" in w for w in report.warnings)
    assert "hunter2" not in "\n".join(report.summary + report.warnings)


@pytest.mark.local_only("runs wrangler's build step, no runtime involved")
def test_wrangler_deploy_refuses_an_invalid_config_in_its_build_step(tmp_path):
    """`wrangler deploy` runs [build] first; the build step runs the check and stops the upload."""
    from scripts.workerd.toolchain import node_path_env

    wrangler = ROOT / "node_modules" / ".bin" / "wrangler"
    assert wrangler.exists(), "scripts/_bootstrap.sh installs wrangler"
    text = (ROOT / "wrangler.toml").read_text()
    text = text.replace('main = "build/edge/worker/entry.py"', f'main = "{ROOT}/build/edge/worker/entry.py"')
    text = text.replace('base_dir = "build/edge"', f'base_dir = "{ROOT}/build/edge"')
    text = text.replace('command = "python3 scripts/stage_bundle.py"', f'command = "python3 {ROOT}/scripts/stage_bundle.py"')
    text = text.replace('migrations_dir = "migrations"', f'migrations_dir = "{ROOT}/migrations"')
    broken = write(tmp_path, text.replace('limit = "20/second"', 'limit = "20/secnd"'))
    done = subprocess.run([str(wrangler), "deploy", "--dry-run", "--outdir", str(tmp_path / "out"), "--config",
                           str(broken)], cwd=tmp_path, capture_output=True, text=True, timeout=180,
                          env={**node_path_env(), "WRANGLER_SEND_METRICS": "false", "NO_COLOR": "1", "CI": "1"})
    out = done.stdout + done.stderr
    assert done.returncode != 0, out[-3000:]
    assert 'TOLLGATE.rules[0].limit: "20/secnd" is not a rate' in out, out[-3000:]
    assert not (tmp_path / "out" / "entry.py").exists(), "nothing was bundled"
