"""`python -m src.localedge`: serve a wrangler.toml's Worker locally (scripts/dev calls this)."""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from src.localedge.config import EdgeConfig

ROOT = Path(__file__).resolve().parents[2]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="scripts/dev", description="Run the Worker of a wrangler.toml locally: "
                                "HTTP, Durable Objects on SQLite, D1, alarms and cron.")
    p.add_argument("--config", default=str(ROOT / "wrangler.toml"), help="wrangler.toml to run (default: the repo's)")
    p.add_argument("--port", type=int, default=8787, help="port to listen on (0: any free port; default 8787)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--origin", default=None,
                   help="ORIGIN_URL to forward to (default: an embedded echo origin; 'none': no origin, "
                        "the Worker is a pure decision service; 'config': keep the config's ORIGIN_URL)")
    p.add_argument("--state", default=str(ROOT / ".state"), help="folder for Durable Object and D1 SQLite files")
    p.add_argument("--no-build", action="store_true", help="skip the [build] command")
    p.add_argument("--no-crons", action="store_true", help="do not fire cron triggers on schedule")
    p.add_argument("--quiet", action="store_true", help="print only the listening line")
    return p.parse_args(argv)


async def serve(args: argparse.Namespace) -> int:
    from src.localedge.banner import render
    from src.localedge.config import ConfigError
    from src.localedge.devvars import ensure_dev_vars
    from src.localedge.origin import EchoOrigin
    from src.localedge.runtime import LocalEdge

    config_path = Path(args.config).expanduser().resolve()
    created = ensure_dev_vars(config_path) if config_path.is_file() else None
    if created is not None:
        print(f"created {created} with random secrets (edit it to choose your own)", flush=True)
    echo = None
    origin_vars: dict = {}
    if args.origin is None:
        echo = await EchoOrigin().start()
        origin, note = echo.url, f"{echo.url} (embedded echo origin; --origin URL to use yours)"
    elif args.origin == "none":
        origin, note = None, "none (pure decision service)"
        origin_vars = {"ORIGIN_URL": None}
    elif args.origin == "config":
        origin, note = None, "from the config's ORIGIN_URL"
    else:
        origin, note = args.origin, args.origin
    edge = LocalEdge(config_path, args.state, host=args.host, port=args.port, origin=origin, vars=origin_vars,
                     build=not args.no_build, crons=not args.no_crons, project_root=ROOT)
    try:
        refusal = preflight(edge.load(), Path(args.state))
        if refusal is None:
            await edge.start()
    except (ConfigError, OSError) as exc:
        refusal = f"localedge: {exc}"
    if refusal is not None:
        print(refusal, file=sys.stderr)
        if echo:
            await echo.stop()
        return 2
    values = dict(edge.env.__dict__)
    if not args.quiet:
        if origin is None and args.origin == "config":
            note = f"{values.get('ORIGIN_URL', '(none)')} (from the config)"
        print(render(edge.config, values, edge.url, str(Path(args.state)), note), flush=True)
    print(f"localedge: listening on {edge.url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    print("localedge: shutting down", flush=True)
    await edge.stop()
    if echo:
        await echo.stop()
    return 0


def preflight(config: "EdgeConfig", state: Path) -> str | None:
    """What must hold before serving: for Tollgate's Worker, the config is valid as a whole
    (every error listed, each with its field path: a config that would 500 or limit nothing
    never starts), and a changed IDENTITY_SECRET is said loudly. Returns the refusal text."""
    from src.localedge import secretguard
    from src.localedge.check import check_file, is_tollgate

    if config.project is not None:
        print(f"localedge: {config.path.name} names no Worker beside it: main, base_dir and [build] resolve "
              f"against {config.project} (its Worker, your rules); secrets from {config.dev_vars_path}", flush=True)
    if not is_tollgate(config.base_dir):
        return None
    report = check_file(config.path, config.secrets)
    for warning in report.warnings:
        print(f"localedge: warning: {warning}", file=sys.stderr, flush=True)
    if not report.ok:
        return "\n".join([f"localedge: {config.path} is not a valid Tollgate config ({len(report.errors)} "
                          "error(s)); nothing was started:"] + [f"  {e}" for e in report.errors])
    warning = secretguard.check(state, config.secrets.get("IDENTITY_SECRET"), config.dev_vars_path)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        stream=sys.stderr)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    return asyncio.run(serve(args))


if __name__ == "__main__":
    sys.exit(main())
