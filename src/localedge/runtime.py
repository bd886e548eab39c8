"""`LocalEdge`: one Worker with its Durable Objects, D1, alarms and cron, served over HTTP.

    async with LocalEdge("wrangler.toml", ".state", port=0, origin=url) as edge:
        edge.url                      # http://127.0.0.1:<port>
        edge.env.BUCKETS              # a Durable Object namespace (in-process)
        edge.d1("USAGE_DB").rows(...) # read D1 directly
        await edge.scheduled("*/5 * * * *")

Start order: run `[build] command` (as wrangler dev does), load config and
secrets, put the SDK on sys.path, import `main` with `base_dir` on sys.path,
build `env`, load persisted alarms, listen, start cron.
"""
from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Awaitable, Callable, Mapping

from src.localedge import sdk
from src.localedge.config import ConfigError, EdgeConfig, load_config

sdk.install()

from workers.fetch import close_sessions, platform as fetch_platform  # noqa: E402  (after sdk.install)

from src.localedge.cron import CronScheduler  # noqa: E402
from src.localedge.d1 import D1Database  # noqa: E402
from src.localedge.durable.closer import drain  # noqa: E402
from src.localedge.durable.alarms import BASE_RETRY_DELAY_S, AlarmScheduler, LoopClock, ManualClock  # noqa: E402
from src.localedge.durable.namespace import DurableObjectNamespace  # noqa: E402
from src.localedge.server import EdgeServer  # noqa: E402

log = logging.getLogger("localedge")


class Env:
    """The Worker's `env`: vars, secrets and bindings as attributes (AttributeError when absent)."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.__dict__.update(values)

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"env has no binding or var named {name!r}")

    def __repr__(self) -> str:
        return f"Env({', '.join(sorted(self.__dict__))})"


class ExecutionContext:
    """`ctx` of a fetch/scheduled event: `waitUntil(awaitable)`, `passThroughOnException()`."""

    __slots__ = ("_edge", "props")

    def __init__(self, edge: "LocalEdge") -> None:
        self._edge = edge
        self.props = None

    def waitUntil(self, awaitable: Any) -> None:
        self._edge.track(awaitable)

    def passThroughOnException(self) -> None:
        """No fallback origin exists locally; the 500 stays a 500."""


class ScheduledController:
    """What `scheduled(controller, env, ctx)` gets: `.cron`, `.scheduledTime` (ms), `.noRetry()`."""

    def __init__(self, cron: str, scheduled_time_ms: int) -> None:
        self.cron = cron
        self.scheduledTime = scheduled_time_ms
        self.type = "scheduled"
        self.retry = True

    def noRetry(self) -> None:
        self.retry = False


def run_build(config: EdgeConfig) -> None:
    """The `[build] command`, run in the config's folder before loading (as wrangler dev does)."""
    if not config.build_command:
        return
    # TOLLGATE_CONFIG: the file being run, for a build step that checks it (scripts/stage_bundle.py)
    done = subprocess.run(config.build_command, shell=True, cwd=config.root, capture_output=True, text=True,
                          env={**os.environ, "TOLLGATE_CONFIG": str(config.path)})
    if done.returncode != 0:
        raise ConfigError(f"[build] command {config.build_command!r} failed with exit code {done.returncode}:\n"
                          f"{done.stdout}{done.stderr}")
    if done.stdout.strip():
        log.info("build: %s", done.stdout.strip())


def import_main(config: EdgeConfig) -> Any:
    """Import `main` by its name below `base_dir`, so absolute imports resolve from there."""
    base = str(config.base_dir)
    if base not in sys.path:
        sys.path.insert(0, base)
    name = config.main_module
    if not config.main.is_file():
        raise ConfigError(f"{config.path}: main {config.main} does not exist"
                          + (" (did the [build] command run?)" if config.build_command else ""))
    importlib.invalidate_caches()
    return importlib.import_module(name)


class LocalEdge:
    def __init__(self, config_path: str | Path, state_dir: str | Path, *, host: str = "127.0.0.1",
                 port: int = 8787, origin: str | None = None, vars: Mapping[str, Any] | None = None,
                 build: bool = True, crons: bool = True, test_scheduled: bool = True,
                 alarm_retry_base_s: float = BASE_RETRY_DELAY_S, max_live_objects: int = 2000,
                 dev_vars: str | Path | None = None, cron_now_ms: Callable[[], int] | None = None,
                 cron_sleep: Callable[[float], Awaitable[None]] | None = None,
                 alarm_clock: LoopClock | ManualClock | None = None, project_root: Path | None = None) -> None:
        self.config_path = Path(config_path)
        self.state_dir = Path(state_dir)
        self.host, self.port = host, port
        self.origin = origin
        self.extra_vars = dict(vars or {})
        self.build = build
        self.run_crons = crons
        self.test_scheduled = test_scheduled
        self.alarm_retry_base_s = alarm_retry_base_s
        self.alarm_clock = alarm_clock      # None: wall clock; ManualClock: tests move time
        self.max_live_objects = max_live_objects
        self.dev_vars = dev_vars
        self.project_root = project_root    # a config away from its Worker resolves main/build here
        self._cron_clock = {k: v for k, v in (("now_ms", cron_now_ms), ("sleep", cron_sleep)) if v is not None}
        self.config: EdgeConfig | None = None
        self.env: Env | None = None
        self.module: Any = None
        self.entrypoint: type | None = None
        self.namespaces: dict[str, DurableObjectNamespace] = {}
        self.databases: dict[str, D1Database] = {}
        self.alarms: AlarmScheduler | None = None
        self.cron: CronScheduler | None = None
        self._cron_task: asyncio.Task | None = None
        self._server: EdgeServer | None = None
        self._tasks: set[asyncio.Future] = set()

    # ------------------------------------------------------------ lifecycle
    def load(self) -> EdgeConfig:
        config = load_config(self.config_path, self.dev_vars, self.project_root)
        if self.build:
            run_build(config)
        self.config = config
        fetch_platform["cf_worker_zone"] = f"{config.name}.example.com"   # as wrangler dev names it
        return config

    async def start(self) -> "LocalEdge":
        try:
            return await self._start()
        except BaseException:
            await self.stop()  # a half-started runtime leaves no timers or open files behind
            raise

    async def _start(self) -> "LocalEdge":
        config = self.config or self.load()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.module = import_main(config)
        entry = getattr(self.module, "Default", None)
        if entry is None:
            raise ConfigError(f"{config.main}: no class Default (the Worker's entrypoint)")
        self.entrypoint = entry
        self.alarms = AlarmScheduler(self.state_dir, self._run_alarm, base_delay_s=self.alarm_retry_base_s,
                                     clock=self.alarm_clock)
        values = config.env_values()
        by_class: dict[str, DurableObjectNamespace] = {}
        for b in config.durable_objects:
            cls = getattr(self.module, b.class_name, None)
            if not isinstance(cls, type):
                raise ConfigError(f"{config.path}: durable_objects binding {b.name}: class {b.class_name} "
                                  f"is not defined or exported by {config.main_module}")
            ns = by_class.get(b.class_name)
            if ns is None:
                ns = by_class[b.class_name] = DurableObjectNamespace(
                    cls, self.state_dir, lambda: self.env, self.alarms, self.track, self.max_live_objects)
            self.namespaces[b.name] = ns
            values[b.name] = ns
        self._by_class = by_class
        for d in config.d1_databases:
            db = self.databases[d.binding] = D1Database(self.state_dir / "d1" / f"{d.binding}.sqlite")
            if d.migrations_dir is not None and d.migrations_dir.is_dir():
                for name in db.apply_migrations(d.migrations_dir):
                    log.info("D1 %s: applied migration %s", d.binding, name)
            values[d.binding] = db
        values.update(self.extra_vars)
        if self.origin is not None:
            values["ORIGIN_URL"] = self.origin
        self.env = Env({k: v for k, v in values.items() if v is not None})
        self.alarms.start()
        self._server = EdgeServer(self)
        self.port = await self._server.start(self.host, self.port)
        if self.run_crons and config.crons:
            self.cron = CronScheduler(config.crons, self.fire_cron, **self._cron_clock)
            self._cron_task = asyncio.ensure_future(self.cron.run())
        return self

    async def stop(self) -> None:
        """Graceful shutdown: stop listening, stop cron, let running alarms and waitUntil
        tasks finish (bounded), commit and close every object's SQLite file."""
        started = time.monotonic()
        if self._server is not None:
            await self._server.stop()
            self._server = None
        if self._cron_task is not None:
            self._cron_task.cancel()
            await asyncio.gather(self._cron_task, return_exceptions=True)
            self._cron_task = None
        if self.alarms is not None:
            await self.alarms.stop()
            self.alarms = None
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        for ns in set(self.namespaces.values()):
            ns.close()
        await asyncio.get_running_loop().run_in_executor(None, drain)
        for db in self.databases.values():
            db.close()
        self.databases.clear()
        await close_sessions()
        log.info("stopped in %.2f s", time.monotonic() - started)

    async def __aenter__(self) -> "LocalEdge":
        return await self.start()

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    # ------------------------------------------------------------ events
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def track(self, awaitable: Any) -> None:
        """`ctx.waitUntil`: keep the task alive and awaited at shutdown; log its failure."""
        task = asyncio.ensure_future(awaitable)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Future) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("waitUntil task failed", exc_info=task.exception())

    async def dispatch_fetch(self, request: Any) -> Any:
        instance = self.entrypoint(ExecutionContext(self), self.env)
        return await instance.fetch(request)

    async def scheduled(self, cron: str, scheduled_time_ms: int | None = None) -> ScheduledController | None:
        """Run `Default.scheduled` once (what a cron trigger and /__scheduled do); None if it has none."""
        instance = self.entrypoint(ExecutionContext(self), self.env)
        handler = getattr(instance, "scheduled", None)
        if handler is None:
            return None
        controller = ScheduledController(cron, scheduled_time_ms or int(time.time() * 1000))
        # workerd hands a class-based entrypoint's handlers (event, undefined, undefined): env and
        # ctx went to the constructor (cloudflare/workerd src/workerd/io/worker.c++,
        # getHandlerFromEntrypointClass, read Nov 2026). Python sees None for both.
        result = handler(controller, None, None)
        if inspect.isawaitable(result):
            await result
        return controller

    async def fire_cron(self, cron: str, at_ms: int) -> None:
        """What a cron trigger fires at `at_ms`: the CronScheduler's callback, public so a test or
        tool can drive the crons on its own clock (`CronScheduler(config.crons, edge.fire_cron, ...)`)."""
        await self.scheduled(cron, at_ms)

    async def _run_alarm(self, key: tuple[str, str], name: str | None, info: Any) -> None:
        ns = self._by_class.get(key[0])
        if ns is None:
            raise RuntimeError(f"alarm for class {key[0]}, which this config no longer binds")
        await ns.run_alarm(key[1], name, info)

    # ------------------------------------------------------------ in-process access
    def d1(self, binding: str) -> D1Database:
        return self.databases[binding]

    def namespace(self, binding: str) -> DurableObjectNamespace:
        return self.namespaces[binding]

    def uncaught_errors(self) -> int:
        """Requests whose fetch raised out of the Worker while serving (each answered 500 and
        logged): a fuzzer or test counts them, since the client only sees the 500."""
        return self._server.errors if self._server is not None else 0
