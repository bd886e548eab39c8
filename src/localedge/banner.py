"""What scripts/dev prints on start: bindings, rules and three curl lines to try."""
from __future__ import annotations

import re
import shlex
from typing import Any

from src.localedge.config import EdgeConfig

_SECRETISH = re.compile(r"TOKEN|SECRET|KEY|PASSWORD", re.I)


def _plain(value: Any) -> Any:
    to_py = getattr(value, "to_py", None)
    return to_py() if callable(to_py) else value


def _capacity(rule: dict) -> int:
    if isinstance(rule.get("burst"), int):
        return rule["burst"]
    m = re.match(r"\s*(\d+)", str(rule.get("limit", "")))
    return int(m.group(1)) if m else 10


def _identity_header(tollgate: dict) -> list[str]:
    for source in tollgate.get("identity", ["header:x-api-key"]):
        if source.startswith("header:"):
            return ["-H", f"{source[7:]}: demo-key-1"]
        if source == "bearer":
            return ["-H", "Authorization: Bearer demo-key-1"]
    return []


def render(config: EdgeConfig, env_values: dict[str, Any], url: str, state_dir: str,
           origin_note: str) -> str:
    width = max([len(n) for n in env_values] + [14]) + 1
    out = [f"Tollgate local edge: {config.name} ({config.path})", f"  listening on {url}",
           f"  state in {state_dir}", f"  origin: {origin_note}", "", "Bindings:"]
    for b in config.durable_objects:
        out.append(f"  env.{b.name:<{width}} Durable Object namespace  {b.class_name} (SQLite)")
    for d in config.d1_databases:
        out.append(f"  env.{d.binding:<{width}} D1 database               {d.database_name} -> {state_dir}/d1/{d.binding}.sqlite")
    for name in sorted(env_values):
        if name in {b.name for b in config.durable_objects} | {d.binding for d in config.d1_databases}:
            continue
        value = env_values[name]
        if name in config.secrets or _SECRETISH.search(name):
            shown = "(secret from .dev.vars)" if name in config.secrets else "(hidden)"
        elif isinstance(_plain(value), (dict, list)):
            shown = "(object var)"
        else:
            shown = repr(value)
        out.append(f"  env.{name:<{width}} {shown}")
    if config.crons:
        out.append(f"  cron triggers: {', '.join(config.crons)}  (try: curl '{url}/__scheduled?cron={config.crons[0].replace(' ', '+')}')")
    tollgate = _plain(env_values.get("TOLLGATE"))
    rules = tollgate.get("rules", []) if isinstance(tollgate, dict) else []
    rules = [r for r in rules if isinstance(r, dict)] if isinstance(rules, list) else []
    if rules:
        out += ["", "Rules:"]
        for r in rules:
            extra = " (shadow)" if r.get("shadow") else ""
            burst = f", burst {r['burst']}" if "burst" in r else ""
            out.append(f"  {str(r.get('name', '?')):<10} {str(r.get('limit', '?')):<14} "
                       f"{r.get('algorithm', 'gcra')}{burst}{extra}")
    ident = _identity_header(tollgate if isinstance(tollgate, dict) else {})
    burst_n = 2 * _capacity(rules[0]) if rules else 50
    h = " ".join(shlex.quote(a) for a in ident)
    out += ["", "Try:",
            f"  curl -i {h} '{url}/v1/search?q=hello'",
            f"  curl -s -Z --parallel-max 20 {h} -o /dev/null -w '%{{http_code}} ' '{url}/v1/items?[1-{burst_n}]'; echo"
            "   # a burst: 429s once the burst is spent",
            f"  curl -i {h} '{url}/__tollgate/allow'", ""]
    return "\n".join(out)
