"""The wrangler.toml the repo ships is a valid gateway configuration, read the
way the local runtime (and wrangler) read it."""
from __future__ import annotations

from types import SimpleNamespace

from src.localedge.config import load_config
from src.localedge.sdk import install
from tests.gateway.support import ROOT

install()
from worker.settings import SettingsError, parse_settings  # noqa: E402


def test_shipped_wrangler_toml_parses_into_settings():
    values = load_config(ROOT / "wrangler.toml", dev_vars=ROOT / ".dev.vars.example").env_values()
    settings = parse_settings(SimpleNamespace(**values, BUCKETS=object()))
    assert settings.origin == "https://api.example.com"
    assert [r.name for r in settings.config.rules] == ["burst", "search", "daily", "per_ip"]
    # the identity layers are on in the sample (issue 11): known keys per IP, JWT, a per-IP rule, a plan
    layers = settings.config.layers
    assert layers.known_keys.unknown_keys == "per_ip" and layers.jwt.secret_name == "JWT_SECRET"
    assert str(settings.config.rule_keys["per_ip"]) == "ip" and "pro" in settings.config.plans
    assert settings.identity_secret and settings.admin_token and settings.allow_token


def test_without_identity_secret_the_gateway_refuses_to_start_naming_it():
    values = load_config(ROOT / "wrangler.toml", dev_vars=ROOT / "no-such-file").env_values()
    try:
        parse_settings(SimpleNamespace(**values, BUCKETS=object()))
    except SettingsError as exc:
        assert any(e.startswith("IDENTITY_SECRET: secret not set") for e in exc.errors), exc.errors
    else:
        raise AssertionError("settings parsed without IDENTITY_SECRET")
