#!/usr/bin/env python3
"""Reconcile Tollgate's usage store: what each client used, what is over quota,
where the store and the live buckets disagree, and restoring a lost bucket.

    scripts/reconcile report  [--db PATH] [--config wrangler.toml] [--client ID] [--json]
    scripts/reconcile drift   --url URL --identity ID [--identity ID ...] [--db PATH]
    scripts/reconcile restore --url URL --identity ID [--db PATH]
    scripts/reconcile export  [--db PATH] [--client ID]             (NDJSON on stdout)

--client: the identity as users write it (alice, key:alice, ip:192.0.2.1, an IPv6 address),
hashed with IDENTITY_SECRET ($IDENTITY_SECRET or .dev.vars beside --config), or a client
key or the prefix `report` prints.

--db: a SQLite file holding the `usage` table (the local runtime's D1 file, or a
`wrangler d1 export --output usage.sql` dump, loaded into memory when it ends in .sql).
Without --db the local runtime's D1 database for USAGE_DB under --state is used.
The admin token comes from --token or $ADMIN_TOKEN (or .dev.vars beside the config).
"""
from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from src.tollgate.snapshots import UsageRecord, encode_ndjson  # noqa: E402
from src.tollgate.usage import ACCOUNTING_PERIOD_MS  # noqa: E402

DAY_MS = 86_400_000


class ReconcileError(Exception):
    pass


# ------------------------------------------------------------------ store (scripts/reconcile_store.py)
from scripts.reconcile_store import load_records, load_rows, open_as  # noqa: E402


def open_store(db: str | None, state: str) -> sqlite3.Connection:
    return open_as(db, state, ReconcileError)


# ------------------------------------------------------------------ quotas from the config
def load_rules(config: Path) -> dict[str, dict]:
    """Rule name -> {count, period_ms, shadow} from [vars.TOLLGATE] via the core's config parser."""
    from src.tollgate.config import parse_config
    raw = tomllib.loads(config.read_text()).get("vars", {}).get("TOLLGATE")
    if raw is None:
        raise ReconcileError(f"{config}: no [vars.TOLLGATE] table")
    cfg = parse_config(raw)
    return {r.name: {"count": r.limit.count, "period_ms": r.limit.period_ms, "shadow": r.shadow}
            for r in cfg.rules}


def quota_windows(records: list[UsageRecord], rule: dict | None, spans: list[int] | None = None) -> list[dict]:
    """Usage per quota window of one client's rule: hourly rows summed into the rule's window
    (a day for a daily quota); rules shorter than an hour are compared per hour, scaled; a
    rolled-up day (`spans` says which rows are days) is compared per day, scaled, for rules
    shorter than a day."""
    if rule is None:
        return []
    period = rule["period_ms"]
    sums: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0, 0])
    for r, span in zip(records, spans or [ACCOUNTING_PERIOD_MS] * len(records)):
        window = max(period, span)
        s = sums[(r.period_start_ms - r.period_start_ms % window, window)]
        s[0] += r.admitted
        s[1] += r.denied
        s[2] += r.shadow_denied
    out = []
    for (start, window), (a, d, sd) in sorted(sums.items()):
        quota = rule["count"] * window // period
        out.append({"window_start_ms": start, "window_ms": window, "quota": quota, "admitted": a, "denied": d,
                    "shadow_denied": sd, "over": a > quota or sd > 0})
    return out


def iso(ms: int) -> str:
    import datetime
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%MZ")


def client_rows(args: argparse.Namespace) -> list[tuple[UsageRecord, int]]:
    """The store's rows (record, span), only those of `--client` (as users write it: reconcile_clients.py)."""
    conn = open_store(args.db, args.state)
    if not args.client:
        return load_rows(conn)
    from scripts.reconcile_clients import resolve_clients
    return [r for key in resolve_clients(conn, args.client, Path(args.config), ReconcileError)
            for r in load_rows(conn, key)]


def client_records(args: argparse.Namespace) -> list[UsageRecord]:
    return [rec for rec, _ in client_rows(args)]


def report(args: argparse.Namespace) -> int:
    rows = client_rows(args)
    records = [rec for rec, _ in rows]
    rules = load_rules(Path(args.config)) if args.config else {}
    grouped: dict[tuple[str, str], list[UsageRecord]] = defaultdict(list)
    spans: dict[tuple[str, str], list[int]] = defaultdict(list)
    for r, span in rows:
        grouped[(r.client, r.rule)].append(r)
        spans[(r.client, r.rule)].append(span)
    out = []
    for (client, rule), recs in sorted(grouped.items()):
        out.append({"client": client, "rule": rule,
                    "periods": [{"period_start_ms": r.period_start_ms, "allowed": r.allowed, "admitted": r.admitted,
                                 "denied": r.denied, "shadow_denied": r.shadow_denied, "version": r.version}
                                for r in recs],
                    "windows": quota_windows(recs, rules.get(rule), spans[(client, rule)]),
                    "known_rule": rule in rules if rules else None})
    over = [(o["client"], o["rule"], w) for o in out for w in o["windows"] if w["over"]]
    if args.json:
        json.dump({"clients": out, "over": [{"client": c, "rule": r, **w} for c, r, w in over]}, sys.stdout, indent=1)
        print()
        return 0
    print(f"{'client':<18} {'rule':<12} {'period (UTC hour)':<18} {'allowed':>9} {'admitted':>9} "
          f"{'denied':>8} {'shadow':>7}")
    for o in out:
        for p in o["periods"]:
            print(f"{o['client'][:16]:<18} {o['rule'][:12]:<12} {iso(p['period_start_ms']):<18} {p['allowed']:>9} "
                  f"{p['admitted']:>9} {p['denied']:>8} {p['shadow_denied']:>7}")
    print(f"\n{len(out)} client/rule pairs, {len(records)} period rows")
    if rules:
        print(f"over quota: {len(over)}")
        for c, r, w in over:
            print(f"  OVER {c[:16]} {r}: window {iso(w['window_start_ms'])} +{w['window_ms'] // 60000}min "
                  f"admitted {w['admitted']} > quota {w['quota']}" if w["admitted"] > w["quota"] else
                  f"  OVER {c[:16]} {r} (shadow): {w['shadow_denied']} requests would have been denied "
                  f"in window {iso(w['window_start_ms'])}")
    return 0


# ------------------------------------------------------------------ live buckets via the admin API
def token_of(args: argparse.Namespace) -> str:
    token = args.token or os.environ.get("ADMIN_TOKEN")
    if not token and args.config:
        dev_vars = Path(args.config).parent / ".dev.vars"
        if dev_vars.exists():
            for line in dev_vars.read_text().splitlines():
                if line.startswith("ADMIN_TOKEN="):
                    token = line.split("=", 1)[1].strip().strip('"')
    if not token:
        raise ReconcileError("no admin token: pass --token or set ADMIN_TOKEN")
    return token


def admin(args: argparse.Namespace, method: str, identity: str, suffix: str = "", body: bytes | None = None):
    url = f"{args.url.rstrip('/')}/__tollgate/admin/clients/{urllib.parse.quote(identity, safe='')}{suffix}"
    req = urllib.request.Request(url, method=method, data=body,
                                 headers={"Authorization": f"Bearer {token_of(args)}",
                                          "Content-Type": "application/x-ndjson"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"{}")
        except ValueError:
            return exc.code, {"detail": str(exc)}
    except urllib.error.URLError as exc:
        raise ReconcileError(f"{url}: {exc.reason}") from None


def live_state(obj: dict) -> dict:
    """Find the bucket's inspect() document (client, rules) in the admin GET answer."""
    if isinstance(obj, dict) and "client" in obj and "rules" in obj:
        return obj
    for value in (obj.values() if isinstance(obj, dict) else []):
        if isinstance(value, dict):
            found = live_state(value)
            if found:
                return found
    return {}


def drift_of(live: dict, stored: list[UsageRecord]) -> list[dict]:
    by_key = {(r.rule, r.period_start_ms): r for r in stored}
    out = []
    for rule, s in sorted(live.get("rules", {}).items()):
        if "period_start_ms" not in s:
            continue
        rec = by_key.get((rule, s["period_start_ms"]))
        diff = {c: s[c] - (getattr(rec, c) if rec else 0) for c in ("allowed", "admitted", "denied", "shadow_denied")}
        if rec is not None and rec.version > s["version"]:
            verdict = "STORE AHEAD: the bucket lost state (restore it)"
        elif any(diff.values()):
            verdict = ("pending flush" if s["version"] > (rec.version if rec else 0) else "MISMATCH")
        else:
            verdict = "in sync"
        out.append({"rule": rule, "period_start_ms": s["period_start_ms"], "live_version": s["version"],
                    "store_version": rec.version if rec else None, "diff": diff, "verdict": verdict})
    live_rules = {name for name, s in live.get("rules", {}).items() if "period_start_ms" in s}
    for r in sorted(stored, key=lambda r: -r.period_start_ms):  # the latest period of each rule
        if r.rule not in live_rules:
            out.append({"rule": r.rule, "period_start_ms": r.period_start_ms, "live_version": None,
                        "store_version": r.version, "diff": {}, "verdict": "STORE AHEAD: bucket has no state"})
            live_rules.add(r.rule)
    return out


def drift(args: argparse.Namespace) -> int:
    conn = open_store(args.db, args.state)
    problems = 0
    for identity in args.identity:
        status, obj = admin(args, "GET", identity)
        if status != 200:
            print(f"{identity}: admin GET answered {status}: {obj.get('detail', obj)}")
            problems += 1
            continue
        live = live_state(obj)
        if not live:
            print(f"{identity}: admin answer has no bucket state")
            problems += 1
            continue
        rows = drift_of(live, load_records(conn, live["client"]))
        for d in rows:
            problems += d["verdict"].startswith(("STORE AHEAD", "MISMATCH"))
            print(f"{identity} ({live['client'][:12]}) {d['rule']:<12} {iso(d['period_start_ms'])} "
                  f"live v{d['live_version']} store v{d['store_version']} diff {d['diff']}: {d['verdict']}")
        if not rows:
            print(f"{identity}: no usage in the bucket or the store")
    return 1 if problems else 0


def restore(args: argparse.Namespace) -> int:
    conn = open_store(args.db, args.state)
    [identity] = args.identity
    status, obj = admin(args, "GET", identity)
    live = live_state(obj) if status == 200 else {}
    if not live:
        raise ReconcileError(f"{identity}: admin GET answered {status}; cannot learn the client key")
    records = load_records(conn, live["client"])
    if not records:
        raise ReconcileError(f"{identity}: the store holds no usage for client {live['client']}")
    status, obj = admin(args, "POST", identity, "/restore", encode_ndjson(records))
    print(json.dumps({"status": status, **obj}))
    return 0 if status == 200 else 1


def export(args: argparse.Namespace) -> int:
    sys.stdout.buffer.write(encode_ndjson(client_records(args)))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="scripts/reconcile", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name, fn in (("report", report), ("drift", drift), ("restore", restore), ("export", export)):
        p = sub.add_parser(name)
        p.set_defaults(fn=fn)
        p.add_argument("--db", help="SQLite file (or .sql dump) holding the usage table")
        p.add_argument("--state", default=str(ROOT / ".state"), help="local runtime state folder (default .state)")
        p.add_argument("--config", default=str(ROOT / "wrangler.toml"), help="wrangler.toml with [vars.TOLLGATE]")
        p.add_argument("--client", help="only this client: alice, key:alice, ip:192.0.2.1, an IPv6 address, "
                                        "or its client key (a prefix will do)")
        if name in ("drift", "restore"):
            p.add_argument("--url", required=True, help="Tollgate base URL, e.g. http://127.0.0.1:8787")
            p.add_argument("--token", help="ADMIN_TOKEN (default: $ADMIN_TOKEN or .dev.vars)")
            p.add_argument("--identity", action="append", required=True, help="client identity, e.g. key:abc")
        if name == "report":
            p.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    try:
        return args.fn(args)
    except ReconcileError as exc:
        print(f"reconcile: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
