"""Bad specs and bad extensions get one clear line naming where, never a traceback."""
from __future__ import annotations

import json

import pytest
import yaml

from tests.openapi.support import run

BASE = {"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": {}}


def spec_with(tmp_path, paths: dict, **top) -> str:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({**BASE, **top, "paths": paths}))
    return str(path)


def op(**ext) -> dict:
    return {"responses": {"200": {"description": "ok"}}, **ext}


@pytest.mark.parametrize("paths, top, message", [
    ({"/a": {"get": op(**{"x-tollgate": {"rule": "a", "limt": "1/second"}})}}, {},
     "paths./a.get.x-tollgate.limt: unknown key (known: rule, limit, cost, algorithm, burst, shadow, on_error)"),
    ({"/a": {"get": op(**{"x-tollgate": {"rule": "a"}})}}, {},
     "paths./a.get.x-tollgate.rule: no operation defines rule 'a'"),
    ({"/a": {"get": op(**{"x-tollgate": {"rule": "a", "limit": "1/second"}}),
             "put": op(**{"x-tollgate": {"rule": "a", "limit": "2/second"}})}}, {},
     "paths./a.put.x-tollgate: rule 'a' is already defined differently at paths./a.get.x-tollgate"),
    ({"/a": {"get": op(**{"x-tollgate": {"rule": "a", "limit": "100/minnute"}})}}, {},
     '"100/minnute" is not a rate'),
    ({"/a": {"get": op(**{"x-tollgate": {"rule": "a", "burst": 3}})}}, {},
     "burst without a limit"),
    ({"/a": {"get": op(**{"x-kong-plugin-rate-limiting": {"config": {"policy": "local"}}})}}, {},
     "paths./a.get.x-kong-plugin-rate-limiting.config: no limit (set one of second, minute, hour, day, month, year)"),
    ({"/a": {"get": op()}}, {}, "the imported config would limit nothing"),
    ({"/a": {"get": op()}}, {"x-tollgate": {"rule": "a"}}, "x-tollgate.rule: unknown key at the document level"),
    ({"/a": {"get": {"x-tollgate": {"limit": "1/second"}}}}, {}, "is not valid OpenAPI at paths/"),
])
def test_a_bad_extension_or_spec_is_one_clear_error(tmp_path, capsys, paths, top, message):
    code, out, err = run(capsys, "import", spec_with(tmp_path, paths, **top))
    assert code == 2 and out == ""
    assert message in err, err
    assert "Traceback" not in err


def test_the_rule_error_says_which_operation_it_came_from(tmp_path, capsys):
    paths = {"/a": {"get": op(**{"x-tollgate": {"rule": "a", "limit": "5/second", "algorithm": "fixed_window",
                                                "burst": 3}})}}
    code, _, err = run(capsys, "import", spec_with(tmp_path, paths))
    assert code == 2 and "TOLLGATE.rules[0].burst" in err and "(from paths./a.get.x-tollgate)" in err


def test_unreadable_and_unsupported_files(tmp_path, capsys):
    code, _, err = run(capsys, "import", tmp_path / "missing.yaml")
    assert code == 2 and "missing.yaml" in err
    swagger = tmp_path / "swagger.json"
    swagger.write_text(json.dumps({"swagger": "2.0", "info": {"title": "t", "version": "1"}, "paths": {}}))
    code, _, err = run(capsys, "annotate", swagger)
    assert code == 2 and "only OpenAPI 3.0 and 3.1 are supported, found swagger 2.0" in err
    broken = tmp_path / "broken.yaml"
    broken.write_text("openapi: 3.0.3\npaths: [\n")
    code, _, err = run(capsys, "import", broken)
    assert code == 2 and "not valid YAML" in err
