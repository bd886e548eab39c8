"""Validate a wrangler.toml for Tollgate before anything runs it: `scripts/check`, the
`[build]` step (so `wrangler deploy` refuses) and `scripts/dev` (which refuses to start).

Why here, and why through `worker.settings.parse_settings`: a deployed Worker cannot
refuse to start, so every mistake it could only report as a 503 at run time must be
caught before upload, with the Worker's own words. This module builds the env the
Worker would get from the file (vars, secrets from `.dev.vars` when there is one, a
stand-in for each declared binding) and asks the Worker's settings parser, then adds
what only the file shows: the Durable Object bindings and their migrations, the D1
binding the snapshot store needs. Standard library only (the build step runs it on a
bare `python3`).
"""
from __future__ import annotations

import json
import tomllib
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Mapping, NamedTuple

from src.tollgate.rates import Rate

# binding -> (class, why it is needed)
REQUIRED_DURABLE_OBJECTS = {
    "BUCKETS": ("ClientBucket", "every decision is made by it, so nothing would be limited"),
    "OUTBOX": ("SnapshotOutbox", "usage snapshots leave each bucket through it"),
}
SECRETS = {"IDENTITY_SECRET": "required: keys the client hash; keep it stable",
           "ADMIN_TOKEN": "optional: the admin API is off without it",
           "ALLOW_TOKEN": "optional: /__tollgate/allow refuses costs without it",
           "METRICS_TOKEN": "optional: metrics fall back to ADMIN_TOKEN",
           "SNAPSHOT_SINK_SECRET": "needed with SNAPSHOT_STORE = \"http\""}
PLACEHOLDER = "(set at deploy time)"


class Report(NamedTuple):
    errors: list[str]       # each names its field path; any error means: do not run, do not deploy
    warnings: list[str]
    summary: list[str]      # what would be deployed, one line each (no secret values, no override keys)

    @property
    def ok(self) -> bool:
        return not self.errors


def is_tollgate(base_dir: Path) -> bool:
    """Whether a config's bundle root holds Tollgate's Worker (the local runtime also runs others)."""
    return (base_dir / "worker" / "settings.py").is_file() and (base_dir / "src" / "tollgate").is_dir()


def check_file(path: Path, secrets: Mapping[str, str] | None = None) -> Report:
    """Check `path`; `secrets` default to the `.dev.vars` beside it (names only matter at build)."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Report([f"{path}: no such file"], [], [])
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        return Report([f"{path}: not valid TOML: {exc}"], [], [])
    if secrets is None:
        secrets = _dev_vars(path.parent / ".dev.vars")
    return check_config(raw, secrets)


def check_config(raw: Mapping[str, Any], secrets: Mapping[str, str]) -> Report:
    """Check a parsed wrangler.toml; `secrets` are the values known here (maybe none)."""
    errors: list[str] = []
    warnings: list[str] = []
    vars_ = raw.get("vars", {}) or {}
    if not isinstance(vars_, Mapping):
        return Report(["vars: [vars] must be a table"], [], [])
    bindings = _durable_objects(raw, errors)
    d1 = _d1_bindings(raw, errors)
    _store_bindings(vars_, d1, errors, warnings)
    env = _env(vars_, secrets, bindings, d1)
    settings = _settings(env, errors, secrets)
    for name, why in SECRETS.items():
        if name not in secrets and name == "IDENTITY_SECRET":
            warnings.append(f"secret {name}: not in .dev.vars; before deploying: npx wrangler secret put {name} ({why})")
    summary = _summary(raw, vars_, bindings, d1, secrets, settings)
    return Report(errors, warnings, summary)


def _dev_vars(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    from src.localedge.config import ConfigError, parse_dev_vars
    try:
        return parse_dev_vars(path.read_text(encoding="utf-8"), str(path))
    except ConfigError:
        return {}


def _durable_objects(raw: Mapping[str, Any], errors: list[str]) -> dict[str, str]:
    """Declared binding -> class; every required one present, each class migrated as SQLite."""
    sqlite_classes: set[str] = set()
    for migration in raw.get("migrations", []) or []:
        if isinstance(migration, Mapping):
            sqlite_classes.update(c for c in migration.get("new_sqlite_classes", []) or [] if isinstance(c, str))
            for rename in migration.get("renamed_classes", []) or []:
                if isinstance(rename, Mapping) and rename.get("from") in sqlite_classes:
                    sqlite_classes.add(rename.get("to"))
            sqlite_classes.difference_update(migration.get("deleted_classes", []) or [])
    declared: dict[str, str] = {}
    table = raw.get("durable_objects", {}) or {}
    for i, b in enumerate(table.get("bindings", []) or [] if isinstance(table, Mapping) else []):
        if not isinstance(b, Mapping) or not isinstance(b.get("name"), str) or not isinstance(b.get("class_name"), str):
            errors.append(f"durable_objects.bindings[{i}]: expected name and class_name strings")
            continue
        declared[b["name"]] = b["class_name"]
        if b["class_name"] not in sqlite_classes and not b.get("script_name"):
            errors.append(f"durable_objects.bindings[{i}]: class {b['class_name']} has no migration; add it to a "
                          "[[migrations]] new_sqlite_classes list")
    for name, (class_name, why) in REQUIRED_DURABLE_OBJECTS.items():
        if name not in declared:
            from worker.settings import missing_binding
            errors.append(missing_binding(name, class_name, why))
        elif declared[name] != class_name:
            errors.append(f"{name}: bound to class {declared[name]}, expected {class_name} ({why})")
    return declared


def _d1_bindings(raw: Mapping[str, Any], errors: list[str]) -> dict[str, str]:
    out = {}
    for i, db in enumerate(raw.get("d1_databases", []) or []):
        if not isinstance(db, Mapping) or not isinstance(db.get("binding"), str):
            errors.append(f"d1_databases[{i}]: expected a binding name")
            continue
        out[db["binding"]] = str(db.get("database_name", ""))
    return out


def _store_bindings(vars_: Mapping[str, Any], d1: Mapping[str, str], errors: list[str], warnings: list[str]) -> None:
    """Where usage snapshots go. A missing store limits as well as ever (a warning); a store
    setting that names nothing valid is an error."""
    from worker.stores import store_kind     # the Worker's own reading of the var ("D1 " is d1 there too)
    store = store_kind(SimpleNamespace(SNAPSHOT_STORE=vars_.get("SNAPSHOT_STORE")))
    if store == "d1" and "USAGE_DB" not in d1:
        warnings.append('USAGE_DB: SNAPSHOT_STORE is "d1" but no [[d1_databases]] binding named USAGE_DB is '
                      'declared: usage snapshots will wait in the outbox (npx wrangler d1 create tollgate-usage, '
                      'then binding = "USAGE_DB")')
    elif store == "http" and not vars_.get("SNAPSHOT_SINK_URL"):
        errors.append('SNAPSHOT_SINK_URL: SNAPSHOT_STORE is "http" but no SNAPSHOT_SINK_URL var is set')
    elif store not in ("d1", "http"):
        errors.append(f'SNAPSHOT_STORE: expected "d1" or "http", got {store!r}')


def _env(vars_: Mapping[str, Any], secrets: Mapping[str, str], bindings: Mapping[str, str],
         d1: Mapping[str, str]) -> SimpleNamespace:
    """What the Worker's env would hold: vars, then secrets (a secret wins), then bindings."""
    values: dict[str, Any] = dict(vars_)
    values.update(secrets)
    values.setdefault("IDENTITY_SECRET", PLACEHOLDER)     # checked by name above, not by value
    for name, class_name in {**bindings, **d1}.items():
        values[name] = SimpleNamespace(binding=name, target=class_name)
    return SimpleNamespace(**values)


def _settings(env: SimpleNamespace, errors: list[str], secrets: Mapping[str, str]) -> Any:
    """The Worker's own validation of vars and secrets (its words, its field paths)."""
    from worker.settings import SettingsError, parse_settings
    try:
        return parse_settings(env)
    except SettingsError as exc:
        seen = {e.split(":", 1)[0] for e in errors}      # the binding check above already named BUCKETS
        errors.extend(e for e in exc.errors if not (e.startswith("BUCKETS:") and "BUCKETS" in seen))
        return None


def _summary(raw: Mapping[str, Any], vars_: Mapping[str, Any], bindings: Mapping[str, str],
             d1: Mapping[str, str], secrets: Mapping[str, str], settings: Any) -> list[str]:
    out = [f"worker {raw.get('name', '?')}: main {raw.get('main', '?')}, base_dir {raw.get('base_dir', '(main folder)')}, "
           f"compatibility {raw.get('compatibility_date', '?')} {raw.get('compatibility_flags', [])}"]
    out += [f"  durable object {name} -> {cls}" for name, cls in bindings.items()]
    out += [f"  d1 {name} -> {db}" for name, db in d1.items()]
    crons = (raw.get("triggers", {}) or {}).get("crons", []) if isinstance(raw.get("triggers"), Mapping) else []
    if crons:
        out.append(f"  crons {', '.join(map(str, crons))}")
    for name, value in vars_.items():
        if name != "TOLLGATE":
            out.append(f"  var {name} = {json.dumps(value) if not isinstance(value, str) else value}")
    for name, why in SECRETS.items():
        state = "set in .dev.vars" if name in secrets else "not set here"
        out.append(f"  secret {name}: {state} ({why})")
    if settings is not None:
        config = settings.config
        out.append(f"  mode: {'gateway to ' + settings.origin if settings.origin else 'decision service (no ORIGIN_URL)'}")
        out.append(f"  identity: {', '.join(str(s) for s in config.identity)}")
        for rule in config.rules:
            lim = rule.limit
            extra = (" shadow" if rule.shadow else "") + (f" on_error={rule.on_error}")
            match = ""
            if rule.match.methods or rule.match.paths:
                match = f" match {sorted(rule.match.methods) if rule.match.methods else 'any'} " \
                        f"{list(rule.match.paths) if rule.match.paths else 'any path'}"
            if lim.algorithm == "concurrency":   # issue 14: slots, not a rate
                out.append(f"  rule {rule.name}: {lim.count} concurrent, hold {lim.period_ms // 1000} s{match}{extra}")
                continue
            out.append(f"  rule {rule.name}: {Rate(lim.count, lim.period_ms)}, {lim.algorithm}, "
                       f"capacity {lim.capacity}{match}{extra}")
        for rc in config.costs:
            out.append(f"  cost {rc.method or '*'} {rc.match.paths[0]} = {rc.cost}")
        if config.overrides:
            out.append(f"  overrides: {len(config.overrides)} clients (keys not shown)")
    return out


def render(report: Report, path: Path) -> str:
    """The text `scripts/check` prints."""
    lines = [f"{path}: {'OK' if report.ok else f'{len(report.errors)} error(s)'}"]
    lines += [f"error: {e}" for e in report.errors]
    lines += [f"warning: {w}" for w in report.warnings]
    if report.ok:
        lines += ["would deploy:"] + report.summary
    return "\n".join(lines)
