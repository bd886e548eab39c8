"""Env vars and secrets → one validated `Settings`, parsed once per isolate.

Why a cache: parsing `[vars.TOLLGATE]` compiles every path pattern; doing it
per request would cost more than the decision. The cache is keyed on the raw
values the platform hands over (compared with `==`: identity first, then
value; a JS object proxy compares with `===` on Pyodide), so a different env
(a test, a redeploy) is noticed and re-parsed, and an unchanged one costs six
attribute reads; on the edge, one comparison of the platform's env object
(`platform.env_source`). A broken config is cached too: every request answers 503
"Tollgate is misconfigured" without re-validating.
"""
from __future__ import annotations

import json
import logging
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from src.tollgate.config import Config, ConfigError, parse_config
from worker.platform import env_raw, env_source, env_value

log = logging.getLogger("tollgate.settings")

DEFAULT_ORIGIN_TIMEOUT_MS = 30_000
MAX_ORIGIN_TIMEOUT_MS = 600_000
# Every env name the settings read: a change in any of them means a new Settings.
WATCHED = ("TOLLGATE", "ORIGIN_URL", "ORIGIN_TIMEOUT_MS", "IDENTITY_SECRET", "ALLOW_TOKEN", "ADMIN_TOKEN", "BUCKETS",
           "IDENTITY_SECRET_PREVIOUS")
# The Durable Object binding every decision goes to: without it nothing could be limited.
BUCKETS_BINDING = ("BUCKETS", "ClientBucket")


class Settings(NamedTuple):
    config: Config
    origin: str | None              # ORIGIN_URL without a trailing slash; None: pure decision service
    origin_timeout_s: float
    identity_secret: bytes          # IDENTITY_SECRET: keys the client hash (Durable Object names)
    allow_token: bytes | None       # ALLOW_TOKEN: lets a caller of /__tollgate/allow pass a cost
    admin_token: bytes | None       # ADMIN_TOKEN: the admin API; None disables it
    previous_secret: bytes | None = None   # IDENTITY_SECRET_PREVIOUS: during a rotation (durable_objects/rotation.py)


class SettingsError(Exception):
    """The deployment is misconfigured; `errors` name the var or field path."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(self.errors))


_cached_key: tuple | None = None
_cached: Settings | SettingsError | None = None
_cached_source: Any = None


def load(env: Any) -> Settings:
    """The Settings for this env; raises SettingsError (cached) when it is misconfigured."""
    global _cached_key, _cached, _cached_source
    source = env_source(env)
    # The same platform env object as last time: nothing in it can differ, skip the reads.
    if _cached is None or source is None or source != _cached_source:
        _cached_source = source
        key = tuple(env_raw(env, name) for name in WATCHED)
        if _cached is None or key != _cached_key:
            try:
                _cached = parse_settings(env)
            except SettingsError as exc:
                log.error("Tollgate is misconfigured:\n  %s", "\n  ".join(exc.errors))
                _cached = exc
            _cached_key = key
    if isinstance(_cached, SettingsError):
        raise _cached
    return _cached


def parse_settings(env: Any) -> Settings:
    """Validate every var and secret the Worker reads; SettingsError lists every problem."""
    errors: list[str] = []
    config = None
    raw = env_value(env, "TOLLGATE")
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            errors.append(f"TOLLGATE: a string var must hold the config as JSON ({exc})")
            raw = None
    if raw is None and not errors:
        errors.append("TOLLGATE: missing (define [vars.TOLLGATE] with at least one [[vars.TOLLGATE.rules]])")
    elif raw is not None:
        try:
            config = parse_config(raw)
        except ConfigError as exc:
            errors.extend(exc.errors)
    origin = _origin(env_value(env, "ORIGIN_URL"), errors)
    timeout_ms = _timeout_ms(env_value(env, "ORIGIN_TIMEOUT_MS"), errors)
    secret = _secret(env_value(env, "IDENTITY_SECRET"), "IDENTITY_SECRET", errors, required=True)
    allow = _secret(env_value(env, "ALLOW_TOKEN"), "ALLOW_TOKEN", errors)
    admin = _secret(env_value(env, "ADMIN_TOKEN"), "ADMIN_TOKEN", errors)
    previous = _secret(env_value(env, "IDENTITY_SECRET_PREVIOUS"), "IDENTITY_SECRET_PREVIOUS", errors)
    if previous is not None and previous == secret:
        errors.append("IDENTITY_SECRET_PREVIOUS: equals IDENTITY_SECRET; set it to the secret being replaced")
    if env_raw(env, BUCKETS_BINDING[0]) is None:
        errors.append(missing_binding(*BUCKETS_BINDING, "every decision is made by it, so nothing would be limited"))
    if errors or config is None or secret is None:
        raise SettingsError(errors)
    return Settings(config, origin, timeout_ms / 1000, secret, allow, admin, previous)


def missing_binding(name: str, class_name: str, why: str) -> str:
    """The error for a Durable Object binding the config needs and does not declare."""
    return (f"{name}: no Durable Object binding named {name} ({why}); add to wrangler.toml: "
            f'[[durable_objects.bindings]] name = "{name}", class_name = "{class_name}", '
            f"and {class_name} in a [[migrations]] new_sqlite_classes list")


def _origin(value: Any, errors: list[str]) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        errors.append(f"ORIGIN_URL: expected a URL string, got {type(value).__name__}")
        return None
    text = value.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        errors.append(f"ORIGIN_URL: expected an http:// or https:// URL such as https://api.example.com, got {text!r}")
        return None
    if parts.query or parts.fragment:
        errors.append("ORIGIN_URL: must not carry a query or fragment (the request's own are forwarded)")
        return None
    return text.rstrip("/")


def _timeout_ms(value: Any, errors: list[str]) -> int:
    if value is None or value == "":
        return DEFAULT_ORIGIN_TIMEOUT_MS
    try:
        ms = int(str(value).strip())
    except ValueError:
        errors.append(f"ORIGIN_TIMEOUT_MS: expected whole milliseconds, got {value!r}")
        return DEFAULT_ORIGIN_TIMEOUT_MS
    if not 1 <= ms <= MAX_ORIGIN_TIMEOUT_MS:
        errors.append(f"ORIGIN_TIMEOUT_MS: expected 1..{MAX_ORIGIN_TIMEOUT_MS}, got {ms}")
        return DEFAULT_ORIGIN_TIMEOUT_MS
    return ms


def _secret(value: Any, name: str, errors: list[str], required: bool = False) -> bytes | None:
    if value is None or value == "":
        if required:
            errors.append(f"{name}: secret not set (wrangler secret put {name}; locally: .dev.vars)")
        return None
    if not isinstance(value, str):
        errors.append(f"{name}: expected a string secret, got {type(value).__name__}")
        return None
    return value.encode()
