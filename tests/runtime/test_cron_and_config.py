"""Cron triggers from wrangler.toml, /__scheduled, and wrangler-style config and .dev.vars."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import aiohttp
import pytest

from src.localedge.config import ConfigError, load_config, parse_dev_vars
from src.localedge.cron import CronScheduler
from tests.runtime.conftest import BASIC, edge, run


def _ms(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=dt.timezone.utc).timestamp() * 1000)


def test_cron_schedule_from_wrangler_toml_fires_at_the_right_utc_times():
    config = load_config(BASIC)
    assert config.crons == ["*/5 * * * *", "0 3 * * *"]
    clock = [_ms("2026-03-01T02:52:30")]
    fired: list[tuple[str, int]] = []

    async def fake_sleep(seconds: float) -> None:
        clock[0] += int(seconds * 1000)

    async def fire(cron: str, at: int) -> None:
        fired.append((cron, at))

    scheduler = CronScheduler(config.crons, fire, now_ms=lambda: clock[0], sleep=fake_sleep)
    run(scheduler.run(iterations=4))
    assert fired == [("*/5 * * * *", _ms("2026-03-01T02:55:00")),
                     ("*/5 * * * *", _ms("2026-03-01T03:00:00")), ("0 3 * * *", _ms("2026-03-01T03:00:00")),
                     ("*/5 * * * *", _ms("2026-03-01T03:05:00")),
                     ("*/5 * * * *", _ms("2026-03-01T03:10:00"))]


def test_cron_trigger_runs_the_workers_scheduled_handler(state):
    async def body():
        async with edge(state) as e:
            clock = [_ms("2026-03-01T02:59:59")]

            async def fake_sleep(seconds: float) -> None:
                clock[0] += int(seconds * 1000)
            scheduler = CronScheduler(e.config.crons, e.fire_cron, now_ms=lambda: clock[0], sleep=fake_sleep)
            await scheduler.run(iterations=1)
            rows = e.d1("DB").rows("SELECT cron, at, env_arg FROM runs ORDER BY cron")
            # env_arg None: a handler reading its env argument fails here as it would on workerd
            assert rows == [{"cron": "*/5 * * * *", "at": _ms("2026-03-01T03:00:00"), "env_arg": "None"},
                            {"cron": "0 3 * * *", "at": _ms("2026-03-01T03:00:00"), "env_arg": "None"}]
    run(body())


def test_dunder_scheduled_runs_scheduled_like_wrangler_test_scheduled(state):
    async def body():
        async with edge(state) as e, aiohttp.ClientSession() as s:
            async with s.get(f"{e.url}/__scheduled", params={"cron": "*/5 * * * *", "time": "1700000000000"}) as r:
                assert r.status == 200
                assert "Ran scheduled event" in await r.text()
            assert e.d1("DB").rows("SELECT cron, at FROM runs") == [{"cron": "*/5 * * * *", "at": 1700000000000}]
            async with s.get(f"{e.url}/__scheduled", params={"time": "soon"}) as r:
                assert r.status == 400
    run(body())


def test_invalid_cron_in_config_is_named(tmp_path):
    cfg = tmp_path / "wrangler.toml"
    cfg.write_text('name = "x"\nmain = "w.py"\n[triggers]\ncrons = ["*/5 * * * *", "every minute"]\n')
    with pytest.raises(ConfigError, match=r"triggers.crons\[1\]: 'every minute' is not a valid cron"):
        load_config(cfg)


def test_dev_vars_parsing_follows_dotenv():
    text = "\n".join([
        "# comment", "", "A=plain", 'B="quoted # not a comment"', "C='single'", "export D=exported",
        "E=value # inline comment", 'F="line\\nbreak"', "G=", "H = spaced ",
    ])
    assert parse_dev_vars(text) == {"A": "plain", "B": "quoted # not a comment", "C": "single", "D": "exported",
                                    "E": "value", "F": "line\nbreak", "G": "", "H": "spaced"}
    with pytest.raises(ConfigError, match=r"\.dev\.vars:2: expected KEY=VALUE"):
        parse_dev_vars("OK=1\nnot a pair\n")


def test_env_has_vars_secrets_override_and_object_vars(state):
    async def body():
        async with edge(state) as e, aiohttp.ClientSession() as s:
            async with s.get(f"{e.url}/env") as r:
                data = await r.json()
        assert data == {"GREETING": "hello", "SHARED": "from-dev-vars", "SECRET_TOKEN": "s3cret value",
                        "PLAIN": "abc", "NESTED": {"rules": [{"name": "a", "limit": "1/second"}]},
                        "ORIGIN_URL": None}
    run(body())


def test_origin_override_sets_origin_url(state):
    async def body():
        async with edge(state, origin="http://127.0.0.1:9") as e:
            assert e.env.ORIGIN_URL == "http://127.0.0.1:9"
    run(body())


def _config(tmp_path: Path, body: str) -> Path:
    cfg = tmp_path / "wrangler.toml"
    cfg.write_text('name = "x"\nmain = "w.py"\n' + body)
    return cfg


def test_key_value_durable_objects_are_refused_clearly(tmp_path):
    cfg = _config(tmp_path, '[[durable_objects.bindings]]\nname = "B"\nclass_name = "Old"\n'
                            '[[migrations]]\ntag = "v1"\nnew_classes = ["Old"]\n')
    with pytest.raises(ConfigError, match="class Old is declared with new_classes.*new_sqlite_classes"):
        load_config(cfg)
    cfg = _config(tmp_path, '[[durable_objects.bindings]]\nname = "B"\nclass_name = "Nomig"\n')
    with pytest.raises(ConfigError, match="class Nomig has no migration"):
        load_config(cfg)


def test_main_module_name_is_its_path_below_base_dir(tmp_path):
    cfg = tmp_path / "wrangler.toml"
    cfg.write_text('name = "x"\nmain = "build/edge/worker/entry.py"\nbase_dir = "build/edge"\n')
    config = load_config(cfg)
    assert config.main_module == "worker.entry"
    assert config.base_dir == (tmp_path / "build" / "edge").resolve()
    cfg.write_text('name = "x"\nmain = "src/app.py"\n')
    assert load_config(cfg).main_module == "app"  # base_dir defaults to main's folder


def test_build_command_runs_before_loading(tmp_path, state):
    (tmp_path / "stage.py").write_text(
        "from pathlib import Path\n"
        "out = Path('out/pkg'); out.mkdir(parents=True, exist_ok=True)\n"
        "(out / '__init__.py').write_text('')\n"
        "(out / 'built_entry_rt.py').write_text('from workers import Response, WorkerEntrypoint\\n'\n"
        "  'class Default(WorkerEntrypoint):\\n'\n"
        "  '    async def fetch(self, request):\\n'\n"
        "  '        return Response(\"built\")\\n')\n")
    cfg = tmp_path / "wrangler.toml"
    cfg.write_text('name = "b"\nmain = "out/pkg/built_entry_rt.py"\nbase_dir = "out"\n'
                   '[build]\ncommand = "python3 stage.py"\n')

    async def body():
        async with edge(state, config=cfg) as e, aiohttp.ClientSession() as s:
            async with s.get(e.url + "/") as r:
                assert (r.status, await r.text()) == (200, "built")
    run(body())


def test_runtime_fires_its_cron_triggers_on_schedule(state):
    import asyncio

    async def body():
        clock = [_ms("2026-03-01T02:54:59")]
        ticks = asyncio.Event()

        async def fake_sleep(seconds: float) -> None:
            clock[0] += int(seconds * 1000)
            await asyncio.sleep(0)
            if clock[0] >= _ms("2026-03-01T03:00:00"):
                ticks.set()
                await asyncio.Event().wait()  # the clock stops here

        async with edge(state, crons=True, cron_now_ms=lambda: clock[0], cron_sleep=fake_sleep) as e:
            await asyncio.wait_for(ticks.wait(), 5)
            rows = e.d1("DB").rows("SELECT cron, at FROM runs ORDER BY at, cron")
        assert rows == [{"cron": "*/5 * * * *", "at": _ms("2026-03-01T02:55:00")}]
    run(body())
