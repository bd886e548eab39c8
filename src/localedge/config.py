"""wrangler.toml and .dev.vars, read the way wrangler reads them.

- Paths (`main`, `base_dir`, the `[build]` command's folder, `migrations_dir`)
  are relative to the config file, as wrangler resolves them; `base_dir`
  defaults to the folder of `main`. With `project_root` (scripts/dev passes the
  repo), a config whose folder holds none of the files `main` and `base_dir`
  name (an operator's rules file copied out of the repo) resolves them, the
  build and the migrations against that project instead: its Worker, your rules. The main module's import name is its path
  relative to `base_dir` (so `from worker.gateway import ...` resolves there).
- `[vars]`: strings stay strings; tables and arrays become an object var
  (`ObjectVar`, a dict with `.to_py()` as the edge's JS object offers).
- `.dev.vars` beside the config (dotenv syntax: KEY=VALUE, `#` comments,
  optional quotes, `export ` prefix) holds secrets; a secret overrides a var of
  the same name, as in `wrangler dev`.
- Only SQLite-backed Durable Objects (`new_sqlite_classes`) are supported; a
  class declared with `new_classes` (key-value storage) is refused by name.
"""
from __future__ import annotations

import copy
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping


class ConfigError(ValueError):
    """The wrangler.toml (or .dev.vars) cannot be run locally; the message says why and where."""


class ObjectVar(dict):
    """An object var (`[vars.NAME]` table or array): on the edge a JS object; `.to_py()` gives plain Python."""

    def to_py(self) -> Any:
        return copy.deepcopy(dict(self))


class ArrayVar(list):
    def to_py(self) -> Any:
        return copy.deepcopy(list(self))


@dataclass
class DurableObjectBinding:
    name: str
    class_name: str


@dataclass
class D1Binding:
    binding: str
    database_name: str
    database_id: str
    migrations_dir: Path | None


@dataclass
class EdgeConfig:
    path: Path
    name: str
    main: Path
    base_dir: Path
    build_command: str | None
    vars: dict[str, Any]
    secrets: dict[str, str]
    dev_vars_path: Path
    project: Path | None = None         # where main/base_dir/build resolve when not beside the config
    durable_objects: list[DurableObjectBinding] = field(default_factory=list)
    d1_databases: list[D1Binding] = field(default_factory=list)
    crons: list[str] = field(default_factory=list)

    @property
    def root(self) -> Path:
        """The folder `main`, `base_dir` and the `[build]` command resolve against."""
        return self.project or self.path.parent

    @property
    def main_module(self) -> str:
        """Import name of `main`: its path below `base_dir`, dotted, without `.py`."""
        try:
            rel = self.main.relative_to(self.base_dir)
        except ValueError:
            raise ConfigError(f"{self.path}: main {self.main} is not inside base_dir {self.base_dir}") from None
        if rel.suffix != ".py":
            raise ConfigError(f"{self.path}: main must be a .py file, got {rel}")
        return ".".join(rel.with_suffix("").parts)

    def env_values(self) -> dict[str, Any]:
        """Vars then secrets (a secret wins over a var of the same name, as in wrangler dev)."""
        values = dict(self.vars)
        values.update(self.secrets)
        return values


def parse_dev_vars(text: str, source: str = ".dev.vars") -> dict[str, str]:
    """dotenv lines: KEY=VALUE, blank lines and `#` comments skipped, quotes stripped."""
    out: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("export "):
            stripped = stripped[7:].lstrip()
        key, sep, value = stripped.partition("=")
        key = key.strip()
        if not sep or not key or not key.replace("_", "a").replace(".", "a").replace("-", "a").isalnum():
            raise ConfigError(f"{source}:{number}: expected KEY=VALUE, got {line.strip()!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] in "\"'`" and value.find(value[0], 1) > 0:
            quote = value[0]
            value = value[1:value.find(quote, 1)]
            if quote == '"':
                value = value.replace("\\n", "\n").replace("\\r", "\r")
        else:
            hash_at = value.find(" #")
            if hash_at >= 0:
                value = value[:hash_at].rstrip()
        out[key] = value
    return out


def _var(value: Any) -> Any:
    if isinstance(value, dict):
        return ObjectVar(value)
    if isinstance(value, list):
        return ArrayVar(value)
    if isinstance(value, (int, float, bool)):
        return value  # JSON scalars stay scalars in the env, as wrangler sends them
    return value


def _require(table: Mapping[str, Any], key: str, where: str, kind: type = str) -> Any:
    value = table.get(key)
    if not isinstance(value, kind) or (kind is str and not value):
        raise ConfigError(f"{where}.{key}: expected a non-empty {kind.__name__}, got {value!r}")
    return value


def _project_for(raw: Mapping[str, Any], folder: Path, project_root: Path | None) -> Path | None:
    """`project_root` when the config's own folder holds neither `main` nor `base_dir`."""
    if project_root is None or folder == project_root.resolve():
        return None
    named = [raw[k] for k in ("main", "base_dir") if isinstance(raw.get(k), str)]
    if not named or any((folder / n).exists() for n in named):
        return None
    return project_root.resolve()


def load_config(path: str | Path, dev_vars: str | Path | None = None,
                project_root: Path | None = None) -> EdgeConfig:
    """Read `path` (a wrangler.toml) and the .dev.vars beside it (see the module doc for `project_root`)."""
    path = Path(path).resolve()
    raw = _read_toml(path)
    where = path.name
    project = _project_for(raw, path.parent, project_root)
    root = project or path.parent
    main = root / _require(raw, "main", where)
    base_dir = (root / raw["base_dir"]) if "base_dir" in raw else main.parent
    build = raw.get("build", {}) or {}
    command = build.get("command") if isinstance(build, dict) else None
    vars_ = _vars(raw, where)
    dev_vars_path = Path(dev_vars) if dev_vars else path.parent / ".dev.vars"   # secrets stay beside the config
    secrets = parse_dev_vars(dev_vars_path.read_text(encoding="utf-8"), str(dev_vars_path)) \
        if dev_vars_path.is_file() else {}
    return EdgeConfig(path=path, name=str(raw.get("name", path.parent.name)), main=main.resolve(),
                      base_dir=base_dir.resolve(), build_command=command, vars=vars_, secrets=secrets,
                      dev_vars_path=dev_vars_path, project=project,
                      durable_objects=_durable_object_bindings(raw, where),
                      d1_databases=_d1_bindings(raw, where, path.parent, root, project), crons=_crons(raw, where))


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"no wrangler config at {path}")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def _vars(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    vars_raw = raw.get("vars", {}) or {}
    if not isinstance(vars_raw, dict):
        raise ConfigError(f"{where}: [vars] must be a table")
    return {str(k): _var(v) for k, v in vars_raw.items()}


def _declared_classes(raw: Mapping[str, Any]) -> tuple[set[str], set[str]]:
    """The classes the `[[migrations]]` leave standing: (SQLite-backed, key-value)."""
    sqlite_classes: set[str] = set()
    kv_classes: set[str] = set()
    for migration in raw.get("migrations", []) or []:
        for cls in migration.get("new_sqlite_classes", []) or []:
            sqlite_classes.add(cls)
        for cls in migration.get("new_classes", []) or []:
            kv_classes.add(cls)
        for rename in migration.get("renamed_classes", []) or []:
            if rename.get("from") in sqlite_classes:
                sqlite_classes.add(rename.get("to"))
            if rename.get("from") in kv_classes:
                kv_classes.add(rename.get("to"))
        for cls in migration.get("deleted_classes", []) or []:
            sqlite_classes.discard(cls)
            kv_classes.discard(cls)
    return sqlite_classes, kv_classes


def _durable_object_bindings(raw: Mapping[str, Any], where: str) -> list[DurableObjectBinding]:
    sqlite_classes, kv_classes = _declared_classes(raw)
    bindings = []
    do_table = raw.get("durable_objects", {}) or {}
    for i, b in enumerate(do_table.get("bindings", []) or []):
        at = f"{where}: durable_objects.bindings[{i}]"
        binding = DurableObjectBinding(_require(b, "name", at), _require(b, "class_name", at))
        if b.get("script_name"):
            raise ConfigError(f"{at}: script_name {b['script_name']!r}: Durable Objects of another Worker "
                              "are not supported by the local runtime")
        if binding.class_name in kv_classes and binding.class_name not in sqlite_classes:
            raise ConfigError(f"{at}: class {binding.class_name} is declared with new_classes (key-value storage); "
                              "the local runtime runs only SQLite-backed Durable Objects: declare it in "
                              "new_sqlite_classes")
        if binding.class_name not in sqlite_classes:
            raise ConfigError(f"{at}: class {binding.class_name} has no migration; add it to a "
                              "[[migrations]] new_sqlite_classes list")
        bindings.append(binding)
    return bindings


def _d1_bindings(raw: Mapping[str, Any], where: str, folder: Path, root: Path,
                 project: Path | None) -> list[D1Binding]:
    d1 = []
    for i, db in enumerate(raw.get("d1_databases", []) or []):
        at = f"{where}: d1_databases[{i}]"
        # wrangler's default migrations_dir is "migrations" beside the config
        mdir = db.get("migrations_dir", "migrations")
        mpath = folder / mdir if (folder / mdir).is_dir() or project is None else root / mdir
        d1.append(D1Binding(_require(db, "binding", at), str(db.get("database_name", "")),
                            str(db.get("database_id", "")), mpath))
    return d1


def _crons(raw: Mapping[str, Any], where: str) -> list[str]:
    from croniter import croniter  # here: `scripts/check` and the build step import this module on a bare python3

    triggers = raw.get("triggers", {}) or {}
    crons = list(triggers.get("crons", []) or [])
    for i, expr in enumerate(crons):
        if not isinstance(expr, str) or not croniter.is_valid(expr):
            raise ConfigError(f"{where}: triggers.crons[{i}]: {expr!r} is not a valid cron expression")
    return crons
