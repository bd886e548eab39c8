"""integrations/envoy/envoy.yaml is NOT run with a real Envoy (not packaged in
Debian here). What is checked: it is YAML, and it says what the /__tollgate/allow
contract needs (README "HTTP API"): the check goes to /__tollgate/allow with the
identity headers, a denial's Retry-After and RateLimit headers reach the client,
an admitted answer gets the RateLimit headers, and an unreachable Tollgate fails closed."""
from __future__ import annotations

import yaml

from tests.integrations.programs import INTEGRATIONS


def ext_authz() -> dict:
    doc = yaml.safe_load((INTEGRATIONS / "envoy" / "envoy.yaml").read_text())
    hcm = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    filters = hcm["http_filters"]
    assert [f["name"] for f in filters] == ["envoy.filters.http.ext_authz", "envoy.filters.http.router"]
    return filters[0]["typed_config"]


def patterns(node: dict) -> set[tuple[str, str]]:
    return {next((k, v) for k, v in p.items() if k != "ignore_case") for p in node["patterns"]}


def test_the_envoy_config_follows_the_allow_contract():
    config = ext_authz()
    service = config["http_service"]
    assert service["path_prefix"] == "/__tollgate/allow"
    assert config["failure_mode_allow"] is False
    assert patterns(service["authorization_request"]["allowed_headers"]) == {("exact", "x-api-key"),
                                                                               ("exact", "authorization")}
    response = service["authorization_response"]
    assert {("exact", "retry-after"), ("prefix", "ratelimit"), ("exact", "content-type")} <= \
        patterns(response["allowed_client_headers"])
    assert patterns(response["allowed_client_headers_on_success"]) == {("prefix", "ratelimit")}
    clusters = {c["name"] for c in yaml.safe_load((INTEGRATIONS / "envoy" / "envoy.yaml").read_text())
                ["static_resources"]["clusters"]}
    assert service["server_uri"]["cluster"] in clusters
