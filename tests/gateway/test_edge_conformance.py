"""Regressions found by the Pyodide conformance harness (tests/conformance/), kept here
so CPython catches them too, without node.

Each test names the workerd behaviour it pins down and where it was read.
"""
from __future__ import annotations

import asyncio
import json

import pytest

from tests.snapshots.edge_support import edge, store_totals


class _RawJsBinding:
    """A binding as it would look in a `python_from_rpc` copy of the env: a raw JS proxy.

    The SDK wraps `self.env` only (`_EnvWrapper`); a Python list handed to a raw D1 `batch()`
    is not a JS array, so a flush through such an env fails. workerd itself passes a
    class-based entrypoint's `scheduled` no env at all (`undefined`: src/workerd/io/worker.c++,
    getHandlerFromEntrypointClass); both must flush through `self.env`.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def __getattr__(self, attr: str):
        raise TypeError(f"{self.name}.{attr}: a raw JS binding from scheduled()'s env argument, "
                        "not the SDK-wrapped self.env")


class _WorkerdScheduledEnv(dict):
    """`python_from_rpc(env)`: a dict with attribute access whose bindings are raw."""

    def __getattr__(self, name: str):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


@pytest.mark.parametrize("env_argument", ["none", "raw"])
def test_scheduled_flushes_through_self_env_not_its_env_argument(tmp_path, env_argument):
    asyncio.run(_scheduled_with_workerd_env(tmp_path, env_argument))


async def _scheduled_with_workerd_env(tmp_path, env_argument):
    from src.localedge.runtime import ExecutionContext, ScheduledController
    from src.tollgate.snapshots import UsageRecord, encode_rows, shard_for, shard_name

    async with edge(tmp_path) as e:
        record = UsageRecord("client-conformance", "burst", 0, 3, 3, 1, 0, 7)
        shard = e.env.OUTBOX.getByName(shard_name(shard_for(record.client, 4)))
        await shard.put(encode_rows([record]))
        workerd_env = _WorkerdScheduledEnv(
            {name: _RawJsBinding(name) for name in ("BUCKETS", "OUTBOX", "USAGE_DB")},
            **{k: v for k, v in vars(e.env).items() if isinstance(v, str)})
        default = e.entrypoint(ExecutionContext(e), e.env)
        if env_argument == "none":              # what workerd passes
            await default.scheduled(ScheduledController("*/5 * * * *", 0), None, None)
        else:
            await default.scheduled(ScheduledController("*/5 * * * *", 0), workerd_env, ExecutionContext(e))
        assert store_totals(e.d1("USAGE_DB")) == {"burst": (3, 3, 1, 0)}
        assert json.loads(await shard.stats())["depth"] == 0


# --------------------------------------------------------------------------- SQL numbers
MAX_SAFE = 2**53 - 1


class _WorkerdSql:
    """`ctx.storage.sql` with workerd's number rules, over real SQLite.

    A Python int crosses into JS as a Number only within +-(2^53 - 1); beyond, Pyodide's to_js
    makes a BigInt, which SqlStorage.exec cannot bind (BindingValue is null | string | double |
    bytes: cloudflare/workerd src/workerd/api/sql.h). INTEGER results come back as doubles
    (sql.c++ "int64 ... coerce to a double"), which Pyodide turns into int when integral.
    """

    def __init__(self, inner) -> None:
        self.inner = inner

    def exec(self, query: str, *args):
        for i, a in enumerate(args, 1):
            if isinstance(a, int) and not isinstance(a, bool) and abs(a) > MAX_SAFE:
                raise TypeError(f"SQL binding {i} is a BigInt ({a}): not a SqlStorage value")
        return _WorkerdCursor(self.inner.exec(query, *args))


class _WorkerdCursor:
    """A cursor whose INTEGERs came through a double, as SqlStorage's do on workerd."""

    def __init__(self, inner) -> None:
        self.rowsWritten = getattr(inner, "rowsWritten", 0)
        self._rows = [{k: (int(float(v)) if isinstance(v, int) else v) for k, v in r.items()}
                      for r in inner.toArray()]

    def toArray(self) -> list[dict]:
        return list(self._rows)


def test_a_gcra_rule_above_5000_per_period_still_limits_with_workerd_sql_numbers():
    """GCRA state is ms x count: 6000/hour stores ~1e16, above 2^53. Found by the harness
    (scenario "a high-rate GCRA rule ... still limits on the edge"): the bucket could not
    store its state on Cloudflare and every request failed open."""
    from src.localedge.sdk import install
    install()
    from src.tollgate import clock
    from src.tollgate.algorithms import Limit
    from src.tollgate.rules import Match, Rule
    from src.tollgate.wire import decode_decision, encode_decide
    from tests.state.fakes import FakeStorage, make_bucket

    storage = FakeStorage()
    storage.sql = _WorkerdSql(storage.sql)
    rules = (Rule("hot", Limit("gcra", 6000, 3_600_000, 2), Match(None, None)),)
    with clock.use(lambda: 1_800_000_000_000):
        bucket = make_bucket("client-hot", storage)
        verdicts = [decode_decision(asyncio.run(bucket.decide(encode_decide(rules, 1)))).allowed
                    for _ in range(3)]
    assert verdicts == [True, True, False]


def test_local_sql_storage_keeps_workerd_number_and_transaction_rules():
    """The local runtime's ctx.storage.sql used to bind any Python int and run BEGIN; on the
    edge the first fails (BigInt) and the second is refused, so code passing locally broke there."""
    import sqlite3

    import pytest

    from src.localedge.durable.sql_storage import SqlError, SqlStorage

    sql = SqlStorage(sqlite3.connect(":memory:", isolation_level=None))
    sql.exec("CREATE TABLE t (v INTEGER)")
    sql.exec("INSERT INTO t VALUES (?)", 2**53 - 1)
    with pytest.raises(TypeError, match="2\\^53"):
        sql.exec("INSERT INTO t VALUES (?)", 2**53 + 1)
    sql.exec("INSERT INTO t VALUES ('10800000003600001')")   # text into INTEGER: exact on disk
    assert [r["v"] for r in sql.exec("SELECT v FROM t ORDER BY v").toArray()] == [2**53 - 1, 10800000003600000]
    assert sql.exec("SELECT CAST(v AS TEXT) AS s FROM t ORDER BY v").toArray()[1]["s"] == "10800000003600001"
    for statement in ("BEGIN", "begin transaction", "SAVEPOINT a", "COMMIT"):
        with pytest.raises(SqlError, match="transactionSync"):
            sql.exec(statement)


# --------------------------------------------------------------------------- settings per request
class _EnvWrapper:
    """The SDK's per-request wrapper (workers-runtime-sdk entrypoints.py): `_env` is the isolate's
    one JS env object; each var read goes through the wrapper."""

    def __init__(self, env) -> None:
        self._env = env
        self.reads = 0

    def __getattr__(self, name: str):
        self.reads += 1
        return getattr(self._env, name)


def test_settings_are_reused_for_the_same_platform_env_and_reparsed_for_another():
    from types import SimpleNamespace

    from worker import settings

    def raw_env(limit: str) -> SimpleNamespace:
        return SimpleNamespace(IDENTITY_SECRET="s", BUCKETS=object(), TOLLGATE=json.dumps(
            {"rules": [{"name": "r", "limit": limit}]}))
    isolate_env = raw_env("5/second")
    first = settings.load(_EnvWrapper(isolate_env))
    again = _EnvWrapper(isolate_env)                    # the next request: a new wrapper, same env
    assert settings.load(again) is first and again.reads == 0
    other = settings.load(_EnvWrapper(raw_env("7/second")))   # another env (a test, a redeploy)
    assert other is not first and other.config.rules[0].limit.count == 7
    plain = raw_env("9/second")                          # no wrapper (the local runtime): vars compared
    assert settings.load(plain).config.rules[0].limit.count == 9
