"""`scripts/openapi import`: the extensions of real-world-sized specs become a
[vars.TOLLGATE] table the Worker's own parser accepts and that resolves every
operation as the spec says; what Tollgate cannot say exactly is reported."""
from __future__ import annotations

import shutil
import subprocess
import tomllib

import pytest

from src.tollgate.config import parse_config
from src.tollgate.identity import Identity
from tests.openapi.support import SPECS, run
from tests.integrations.programs import ROOT

ALICE = Identity.parse("key:alice")


def imported(capsys, spec: str, *extra: str) -> tuple[dict, str]:
    code, out, err = run(capsys, "import", SPECS / spec, *extra)
    assert code == 0, err
    return tomllib.loads(out)["vars"]["TOLLGATE"], err


def resolve(tollgate: dict, method: str, path: str) -> tuple[list[str], int]:
    resolution = parse_config(tollgate).resolve(ALICE, method, path)
    return [r.name for r in resolution.rules], resolution.cost


def test_shop_rules_costs_and_identity(capsys):
    tollgate, err = imported(capsys, "shop.yaml")
    assert tollgate["identity"] == ["header:x-api-key", "bearer", "ip"]
    rules = {r["name"]: r for r in tollgate["rules"]}
    assert list(rules) == ["burst", "catalogue-writes", "search", "reviews", "orders", "exports"]
    assert rules["burst"] == {"name": "burst", "limit": "20/second", "burst": 40}          # global, untouched
    assert rules["search"] == {"name": "search", "limit": "100/minute", "algorithm": "sliding_window",
                               "match": {"paths": ["/v1/products/search"]}}                 # GET and POST: no methods
    assert rules["orders"]["match"] == {"methods": ["POST", "DELETE"],
                                        "paths": ["/v1/orders", "/v1/orders/*", "/v1/orders/*/cancel"]}
    assert rules["orders"]["on_error"] == "closed" and rules["exports"]["shadow"] is True
    # Most specific first: Tollgate takes the first cost entry that matches.
    assert list(tollgate["costs"].items()) == [("POST /v1/orders/*/cancel", 2), ("GET /v1/reports/inventory", 20),
                                               ("POST /v1/products/search", 5), ("GET /v1/reports/sales", 10)]
    assert "21 limited operation(s)" in err


def test_shop_requests_resolve_as_the_spec_says(capsys):
    tollgate, _ = imported(capsys, "shop.yaml")
    assert resolve(tollgate, "POST", "/v1/products/search") == (["burst", "catalogue-writes", "search"], 5)
    assert resolve(tollgate, "GET", "/v1/products/search") == (["burst", "search"], 1)
    assert resolve(tollgate, "POST", "/v1/orders/o-17/cancel") == (["burst", "orders"], 2)
    assert resolve(tollgate, "GET", "/v1/orders/o-17") == (["burst"], 1)
    assert resolve(tollgate, "GET", "/v1/reports/inventory") == (["burst", "exports"], 20)


def test_what_a_glob_cannot_say_exactly_is_a_warning_and_strict_refuses_it(capsys):
    _, err = imported(capsys, "shop.yaml")
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert warnings == [
        "openapi: warning: POST /v1/products/search: also counted by catalogue-writes (Tollgate paths match "
        "methods x globs, and * spans /): name the rule on this operation too if that is intended",
        "openapi: warning: POST /v1/products/{productId}/reviews: also counted by catalogue-writes (Tollgate paths "
        "match methods x globs, and * spans /): name the rule on this operation too if that is intended"]
    code, out, err = run(capsys, "import", SPECS / "shop.yaml", "--strict")
    assert code == 1 and out == "" and "2 warning(s) with --strict" in err


def test_kong_plugins_become_fixed_windows(capsys):
    tollgate, err = imported(capsys, "kong-petstore.json")
    assert tollgate["identity"] == ["header:x-consumer-key"]                 # limit_by = header
    rules = {r["name"]: r for r in tollgate["rules"]}
    assert {n: r["limit"] for n, r in rules.items()} == {
        "kong-minute": "600/minute", "kong-hour": "10000/hour", "kong-month": "1000000 per 30 days",
        "pets_create-second": "5/second", "pets_create-minute": "60/minute",
        "photos_list-minute": "30/minute", "photos_upload-minute": "30/minute"}
    assert {r["algorithm"] for r in rules.values()} == {"fixed_window"}
    assert rules["photos_list-minute"]["on_error"] == "closed"               # fault_tolerant = false
    assert rules["pets_create-second"]["match"] == {"methods": ["POST"], "paths": ["/api/pets"]}
    assert "Kong counts calendar months; Tollgate counts 30 days windows" in err
    # The route plugin wins over the service plugin in Kong; Tollgate's match cannot leave
    # POST /pets out of the service-wide rules, and says so.
    assert "warning: POST /api/pets: also counted by kong-hour, kong-minute, kong-month" in err
    # A disabled route plugin leaves the service plugin in force (Kong loads enabled plugins only).
    assert resolve(tollgate, "GET", "/api/status")[0] == ["kong-minute", "kong-hour", "kong-month"]
    assert resolve(tollgate, "GET", "/api/pets/7/photos")[0][-1] == "photos_list-minute"


def test_openapi_31_path_level_extension_and_server_variables(capsys):
    tollgate, _ = imported(capsys, "analytics-3.1.yaml")
    assert (tollgate["identity"], tollgate["max_cost"]) == (["bearer", "ip"], 500)
    assert resolve(tollgate, "GET", "/api/v3/query") == (["queries"], 1)            # from the path item
    assert resolve(tollgate, "POST", "/api/v3/query") == (["queries"], 10)
    assert resolve(tollgate, "POST", "/api/v3/events") == (["ingest", "ingest-daily"], 1)
    assert resolve(tollgate, "GET", "/api/v3/projects") == ([], 1)                  # unlimited
    tollgate, _ = imported(capsys, "analytics-3.1.yaml", "--base-path", "/", "--identity", "header:x-key")
    assert tollgate["identity"] == ["header:x-key"]
    assert resolve(tollgate, "POST", "/events") == (["ingest", "ingest-daily"], 1)


def test_write_replaces_only_the_tollgate_section(tmp_path, capsys):
    target = tmp_path / "wrangler.toml"
    original = (ROOT / "wrangler.toml").read_text()
    # The repo's overrides name rules (daily) the shop does not have: refused, file untouched.
    target.write_text(original)
    code, _, err = run(capsys, "import", SPECS / "shop.yaml", "--write", target)
    assert code == 2 and "existing overrides do not fit" in err and "daily" in err
    assert target.read_text() == original
    # Without them the section is replaced; every other line, comments included, stays.
    kept = original.split("[vars.TOLLGATE]")[0]
    target.write_text(kept + '[vars.TOLLGATE]\nrules = [{ name = "old", limit = "1/second" }]\n'
                      '\n[vars.TOLLGATE.overrides."partner-key-123"]\nburst = "unlimited"\n')
    code, out, err = run(capsys, "import", SPECS / "shop.yaml", "--write", target)
    assert code == 0 and out == "" and "wrote [vars.TOLLGATE]" in err
    text = target.read_text()
    assert text.startswith(kept)
    written = tomllib.loads(text)
    assert [r["name"] for r in written["vars"]["TOLLGATE"]["rules"]][:2] == ["burst", "catalogue-writes"]
    assert written["vars"]["TOLLGATE"]["overrides"] == {"partner-key-123": {"burst": "unlimited"}}
    assert {k: v for k, v in written.items() if k != "vars"} == \
           {k: v for k, v in tomllib.loads(original).items() if k != "vars"}
    parse_config(written["vars"]["TOLLGATE"])


def test_the_command_works_as_the_readme_says(tmp_path):
    shutil.copy(SPECS / "shop.yaml", tmp_path / "shop.yaml")
    out = subprocess.run([str(ROOT / "scripts" / "openapi"), "import", "shop.yaml"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("[vars.TOLLGATE]\n")


def test_the_worker_serves_the_imported_rules(tmp_path, capsys, edge_process, runtime):
    from tests.gateway.support import write_config
    from tests.integrations.conftest import fetch
    tollgate, _ = imported(capsys, "shop.yaml")
    edge = edge_process(write_config(tmp_path / "cfg", tollgate), tmp_path / "state", origin="none")
    got = fetch(edge.url, "GET", "/__tollgate/allow", {"X-Api-Key": "alice", "X-Original-Method": "POST",
                                                       "X-Original-URI": "/v1/products/search?q=cat"})
    assert got.status == 200, got.body
    assert got.headers["RateLimit-Policy"] == '"burst";q=40;w=2, "catalogue-writes";q=30;w=60, "search";q=100;w=60'
    remaining = [item.split(";")[1] for item in got.headers["RateLimit"].split(", ")]
    assert remaining == ["r=35", "r=25", "r=95"]                           # cost 5 charged to each rule
