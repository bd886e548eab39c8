"""`scripts/openapi annotate`: every operation an enforcing rule limits documents
Tollgate's 429 (Retry-After, RateLimit, RateLimit-Policy, the problem schema);
the result passes openapi-spec-validator, and annotating twice or importing the
annotated spec changes nothing."""
from __future__ import annotations

import json

import yaml
from openapi_spec_validator import validate

from src.tollgate_tools.openapi.annotate import QUOTA_EXCEEDED
from tests.openapi.support import SPECS, run

REF = {"$ref": "#/components/responses/TollgateTooManyRequests"}


def annotated(tmp_path, capsys, spec: str) -> tuple[dict, str]:
    out = tmp_path / spec
    code, _, err = run(capsys, "annotate", SPECS / spec, "-o", out)
    assert code == 0, err
    text = out.read_text()
    return (json.loads(text) if spec.endswith(".json") else yaml.safe_load(text)), err


def responses(doc: dict, path: str, method: str) -> dict:
    return doc["paths"][path][method]["responses"]


def test_limited_operations_get_the_429_and_unlimited_ones_do_not(tmp_path, capsys):
    doc, err = annotated(tmp_path, capsys, "analytics-3.1.yaml")
    validate(doc)
    assert responses(doc, "/events", "post")["429"] == REF
    assert responses(doc, "/query", "get")["429"] == REF                       # path-level x-tollgate
    assert "429" not in responses(doc, "/projects", "get")                       # no rule
    assert "429" not in responses(doc, "/projects", "post")                      # shadow rule: never denies
    # The API's own 429 is kept, and said so.
    assert responses(doc, "/projects/{projectId}/exports", "post")["429"]["description"].startswith("An export")
    assert "POST /api/v3/projects/{projectId}/exports already documents a 429" in err
    assert "429 added to 3 operation(s)" in err
    # Admitted answers document the RateLimit fields too.
    assert responses(doc, "/events", "post")["202"]["headers"] == {
        "RateLimit": {"$ref": "#/components/headers/TollgateRateLimit"},
        "RateLimit-Policy": {"$ref": "#/components/headers/TollgateRateLimitPolicy"}}


def test_the_429_describes_what_tollgate_sends(tmp_path, capsys):
    doc, _ = annotated(tmp_path, capsys, "shop.yaml")
    validate(doc)
    components = doc["components"]
    response = components["responses"]["TollgateTooManyRequests"]
    assert set(response["headers"]) == {"Retry-After", "RateLimit", "RateLimit-Policy"}
    assert components["headers"]["TollgateRetryAfter"]["schema"] == {"type": "integer", "minimum": 1}
    schema = components["schemas"]["TollgateProblem"]
    assert response["content"]["application/problem+json"]["schema"] == {"$ref": "#/components/schemas/TollgateProblem"}
    assert set(schema["properties"]) >= {"type", "title", "status", "detail", "rule", "retry_after", "allowed"}
    assert schema["properties"]["type"]["example"] == QUOTA_EXCEEDED
    # Every operation is limited by the global burst rule; the shop's own components stay.
    ops = [(p, m) for p, item in doc["paths"].items() for m in item if m in ("get", "post", "put", "delete")]
    assert len(ops) == 21 and all(responses(doc, p, m)["429"] == REF for p, m in ops)
    assert "Problem" in components["schemas"] and "Cart" in components["schemas"]


def test_json_stays_json_and_a_second_run_changes_nothing(tmp_path, capsys):
    doc, _ = annotated(tmp_path, capsys, "kong-petstore.json")
    validate(doc)
    once = (tmp_path / "kong-petstore.json").read_text()
    code, twice, _ = run(capsys, "annotate", tmp_path / "kong-petstore.json")
    assert code == 0 and twice == once


def test_importing_the_annotated_spec_gives_the_same_rules(tmp_path, capsys):
    for spec in ("shop.yaml", "kong-petstore.json", "analytics-3.1.yaml"):
        annotated(tmp_path, capsys, spec)
        code, before, _ = run(capsys, "import", SPECS / spec)
        code2, after, _ = run(capsys, "import", tmp_path / spec)
        assert code == code2 == 0 and before == after, spec


def test_in_place(tmp_path, capsys):
    target = tmp_path / "shop.yaml"
    target.write_text((SPECS / "shop.yaml").read_text())
    code, out, _ = run(capsys, "annotate", target, "--in-place")
    assert code == 0 and out == ""
    assert responses(yaml.safe_load(target.read_text()), "/orders", "post")["429"] == REF
