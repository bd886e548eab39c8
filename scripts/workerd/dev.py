"""`scripts/dev --workerd`: the Worker and its Durable Objects on real workerd.

The same options, echo origin and banner as `scripts/dev`, but the requests are
served by `wrangler dev` (miniflare: D1, Durable Object persistence under
`--state`, `.dev.vars`, `/__scheduled`) running the pinned workerd with the
Pyodide 314 bundle we build offline (scripts/workerd/pyodide_bundle.py). Cron
triggers fire on schedule as in scripts/dev: this process calls `/__scheduled`
at each time of `[triggers] crons` (wrangler dev itself only offers the route).

`--bundle DIR` serves a `wrangler deploy --dry-run --outdir DIR` bundle instead
of the staged source tree: the tests use it to prove the bundle itself runs.
`--as-deployed` skips the preflight refusals (an invalid config, a changed secret):
a deployed Worker cannot refuse to start, so the tests of what it does then (fail
closed with 503) use it.
"""
from __future__ import annotations

import argparse
import asyncio
import re
import signal
import socket
import sys
import urllib.parse
from pathlib import Path

from scripts.workerd import derive, toolchain

ROOT = Path(__file__).resolve().parents[2]
READY = "Ready on "
# wrangler dev's `/__scheduled` is a JS middleware it bundles into JavaScript Workers
# only (wrangler-dist/cli.js, middleware-scheduled.ts); for a Python Worker the
# route that runs `scheduled` is miniflare's (miniflare dist entry.worker.js,
# CorePaths.SCHEDULED), which wrangler dev enables (unsafeTriggerHandlers).
SCHEDULED = "/cdn-cgi/local/scheduled"


def parse_args(argv: list[str]) -> argparse.Namespace:
    from src.localedge.__main__ import parse_args as local_args
    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--workerd", action="store_true")
    extra.add_argument("--bundle", type=Path, default=None)
    extra.add_argument("--as-deployed", action="store_true")
    mine, rest = extra.parse_known_args(argv)
    args = local_args(rest)
    args.bundle = mine.bundle.resolve() if mine.bundle else None
    args.as_deployed = mine.as_deployed
    return args


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def bundle_roots(args: argparse.Namespace, config) -> tuple[Path, Path, Path]:
    """(main, base_dir, python_modules) of what workerd serves: the config's own (resolved as
    scripts/dev resolves them), or a dry-run bundle's."""
    if args.bundle is None:
        return config.main, config.base_dir, ROOT / "python_modules"
    modules = args.bundle / "modules"   # the dry-run tree minus python_modules: see split_bundle
    return modules / "entry.py", modules, args.bundle / "python_modules"


def split_bundle(outdir: Path) -> None:
    """A dry-run outdir holds the edge modules and python_modules/ side by side; wrangler
    refuses python_modules inside base_dir, so the modules move to outdir/modules/."""
    modules = outdir / "modules"
    if modules.is_dir():
        return
    modules.mkdir()
    for item in list(outdir.iterdir()):
        if item.name not in ("modules", "python_modules"):
            item.rename(modules / item.name)


async def start_origin(args: argparse.Namespace) -> tuple[object | None, str | None, bool, str]:
    """(echo origin, ORIGIN_URL to set, drop ORIGIN_URL, note for the banner), as scripts/dev."""
    from src.localedge.origin import EchoOrigin
    if args.origin is None:
        echo = await EchoOrigin().start()
        return echo, echo.url, False, f"{echo.url} (embedded echo origin; --origin URL to use yours)"
    if args.origin == "none":
        return None, None, True, "none (pure decision service)"
    if args.origin == "config":
        return None, None, False, "from the config's ORIGIN_URL"
    return None, args.origin, False, args.origin


async def wait_ready(proc: asyncio.subprocess.Process, log: Path) -> str:
    """Copy wrangler's output to the log until it says where it listens."""
    assert proc.stdout is not None
    with open(log, "ab") as out:
        while True:
            line = await proc.stdout.readline()
            if not line:
                raise RuntimeError(f"wrangler dev exited before it was ready; see {log}")
            out.write(line)
            out.flush()
            text = line.decode(errors="replace")
            if READY in text:
                return text.split(READY, 1)[1].split()[0].rstrip("/")


async def pump(proc: asyncio.subprocess.Process, log: Path) -> None:
    assert proc.stdout is not None
    with open(log, "ab") as out:
        async for line in proc.stdout:
            out.write(line)
            out.flush()


def apply_d1_migrations(derived: Path, persist: Path, env: dict[str, str], log: Path) -> None:
    """Every D1 database gets its migrations first, as the local runtime does at start."""
    import subprocess
    import tomllib
    for db in tomllib.loads(derived.read_text()).get("d1_databases", []):
        if "migrations_dir" not in db:
            continue
        with open(log, "ab") as out:
            done = subprocess.run([str(toolchain.WRANGLER), "d1", "migrations", "apply", db["database_name"], "--local",
                                   "--persist-to", str(persist), "--config", str(derived)],
                                  cwd=derived.parent, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise RuntimeError(f"wrangler d1 migrations apply {db['database_name']} failed; see {log}")


def fire_cron(url: str):
    async def fire(expr: str, at_ms: int) -> None:
        import aiohttp
        query = urllib.parse.urlencode({"cron": expr, "time": at_ms})
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{url}{SCHEDULED}?{query}") as r:
                await r.read()
    return fire


def load_checked(args: argparse.Namespace, state: Path):
    """The config as scripts/dev loads it, or the refusal text: the same checks (an invalid
    Tollgate config, a changed IDENTITY_SECRET), then the [build] step."""
    from src.localedge.__main__ import preflight
    from src.localedge.config import ConfigError, load_config
    from src.localedge.devvars import ensure_dev_vars
    from src.localedge.runtime import run_build

    config_path = Path(args.config).expanduser().resolve()
    created = ensure_dev_vars(config_path) if config_path.is_file() else None
    if created is not None:
        print(f"created {created} with random secrets (edit it to choose your own)", flush=True)
    try:
        config = load_config(config_path, project_root=ROOT)
        refusal = None if args.as_deployed else preflight(config, state)
        if refusal is None and not args.no_build and args.bundle is None:
            run_build(config)
        toolchain.require_tools()
    except (ConfigError, toolchain.ToolchainError, OSError) as exc:
        return None, f"scripts/dev --workerd: {exc}"
    return config, refusal


def wrangler_dev_command(derived: Path, args: argparse.Namespace, port: int, persist: Path) -> list[str]:
    return [str(toolchain.WRANGLER), "dev", "--config", str(derived), "--ip", args.host, "--port", str(port),
            "--persist-to", str(persist), "--test-scheduled", "--inspector-port", str(free_port("127.0.0.1")),
            "--show-interactive-dev-session=false", "--live-reload=false"]


async def serve(args: argparse.Namespace) -> int:
    state = Path(args.state).resolve()
    config, refusal = load_checked(args, state)
    if refusal is not None:
        print(refusal, file=sys.stderr)
        return 2
    work, log = state / "workerd", state / "workerd.log"
    state.mkdir(parents=True, exist_ok=True)
    if args.bundle is not None:
        split_bundle(args.bundle)
    main, base_dir, python_modules = bundle_roots(args, config)
    echo, origin, drop_origin, note = await start_origin(args)
    derived = derive.derive(config.path, work / "config", origin=origin, drop_origin=drop_origin, main=main,
                            base_dir=base_dir,
                            migrations={d.binding: d.migrations_dir for d in config.d1_databases if d.migrations_dir})
    derive.link_beside(derived.parent, "python_modules", python_modules)
    derive.link_beside(derived.parent, ".dev.vars", config.dev_vars_path)
    port = args.port or free_port(args.host)
    env = toolchain.wrangler_env(toolchain.workerd_wrapper(work))
    try:
        apply_d1_migrations(derived, work / "persist", env, log)
    except RuntimeError as exc:
        print(f"scripts/dev --workerd: {exc}", file=sys.stderr)
        await stop(None, echo)
        return 1
    proc = await asyncio.create_subprocess_exec(*wrangler_dev_command(derived, args, port, work / "persist"),
                                                cwd=derived.parent, env=env, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT, stdin=asyncio.subprocess.DEVNULL)
    try:
        await asyncio.wait_for(wait_ready(proc, log), timeout=120)
    except (RuntimeError, asyncio.TimeoutError) as exc:
        print(f"scripts/dev --workerd: {exc or 'wrangler dev was not ready in 120 s'}; log: {log}", file=sys.stderr)
        await stop(proc, echo)
        return 1
    url = f"http://{args.host}:{port}"
    if not args.quiet:
        print(banner(config, args, origin, drop_origin, note, url, state), flush=True)
    print(f"workerd: listening on {url}", flush=True)
    return await run_until_stopped(proc, echo, config.crons if not args.no_crons else [], url, log)


def banner(config, args: argparse.Namespace, origin: str | None, drop_origin: bool, note: str, url: str,
           state: Path) -> str:
    from src.localedge.banner import render
    values = config.env_values()
    if origin:
        values["ORIGIN_URL"] = origin
    elif drop_origin:
        values.pop("ORIGIN_URL", None)
    elif args.origin == "config":
        note = f"{values.get('ORIGIN_URL', '(none)')} (from the config)"
    return workerd_banner(render(config, values, url, str(state), note), state)


def workerd_banner(text: str, state: Path) -> str:
    """scripts/dev's banner, with what is where on wrangler dev instead."""
    text = text.replace("Tollgate local edge:", "Tollgate on workerd (wrangler dev):", 1)
    text = text.replace("/__scheduled?", SCHEDULED + "?")
    return re.sub(rf"-> {re.escape(str(state))}/d1/\S+", f"-> {state}/workerd/persist (miniflare's SQLite)", text)


async def run_until_stopped(proc, echo, crons: list[str], url: str, log: Path) -> int:
    from src.localedge.cron import CronScheduler
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    tasks = [asyncio.ensure_future(pump(proc, log)), asyncio.ensure_future(stopping.wait()),
             asyncio.ensure_future(proc.wait())]
    if crons:
        tasks.append(asyncio.ensure_future(CronScheduler(crons, fire_cron(url)).run()))
    await asyncio.wait(tasks[1:3], return_when=asyncio.FIRST_COMPLETED)
    code = proc.returncode
    for t in tasks:
        t.cancel()
    await stop(proc, echo)
    return 0 if code is None else code


async def stop(proc: asyncio.subprocess.Process, echo) -> None:
    """End wrangler and the workerd processes it started (they share our process group
    only when we lead it, so signal the children by pid and wait)."""
    if proc is not None and proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), timeout=10)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
    if echo is not None:
        await echo.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    return asyncio.run(serve(args))


if __name__ == "__main__":
    sys.exit(main())
