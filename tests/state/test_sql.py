"""durable_objects/sql.py: the one adapter between Durable Object storage and Python values."""
from __future__ import annotations

import asyncio

import pytest

from durable_objects.sql import Sql, get_alarm, migrate, set_alarm
from tests.state.fakes import FakeStorage


class _JsLike:
    """A value that converts itself, as a Pyodide JsProxy does."""

    def __init__(self, value) -> None:
        self.value = value

    def to_py(self):
        return self.value


class _BindingWrapper:   # the SDK's wrapper class name: Sql goes under it to the raw binding
    def __init__(self, raw) -> None:
        self._binding = raw

    def exec(self, *args):
        raise AssertionError("the per-call converting wrapper must not be used")


def test_rows_come_back_as_dicts_with_whole_doubles_as_int():
    class Cursor:
        def toArray(self):
            return _JsLike([_JsLike({"n": 3.0, "x": 2.5, "s": "a", "z": None})])

    class Raw:
        def exec(self, query, *args):
            return Cursor()

    sql = Sql(type("S", (), {"sql": Raw()})())
    assert sql.rows("SELECT") == [{"n": 3, "x": 2.5, "s": "a", "z": None}]
    assert isinstance(sql.one("SELECT")["n"], int)


def test_under_the_sdk_wrapper_the_raw_binding_is_called():
    storage = FakeStorage()
    storage.sql = _BindingWrapper(storage.sql)
    sql = Sql(storage)
    assert sql.run("CREATE TABLE t (a INTEGER)") == 0
    assert sql.run("INSERT INTO t VALUES (?), (?)", 1, None) == 2
    assert sql.rows("SELECT a FROM t ORDER BY a") == [{"a": None}, {"a": 1}]
    assert sql.one("SELECT a FROM t WHERE a = 9") is None


def test_migrate_runs_each_step_once_in_order_and_reports_the_version_found():
    storage = FakeStorage()
    sql = Sql(storage)
    steps = {1: ("CREATE TABLE a (x)",), 2: ("CREATE TABLE b (y)", "INSERT INTO b VALUES (1)")}
    assert migrate(sql, {1: steps[1]}) == 0
    assert migrate(sql, steps) == 1                 # only step 2 runs now
    assert migrate(sql, steps) == 2                 # nothing runs: b still has one row
    assert sql.one("SELECT COUNT(*) AS n FROM b")["n"] == 1
    with pytest.raises(Exception):
        migrate(Sql(storage), {**steps, 3: ("NOT SQL",)})
    assert sql.one("SELECT value FROM meta WHERE key = 'schema_version'")["value"] == "2"


def test_alarms_cross_as_integer_epoch_ms():
    storage = FakeStorage()
    assert asyncio.run(get_alarm(storage)) is None
    asyncio.run(set_alarm(storage, 1234.0))
    assert asyncio.run(get_alarm(storage)) == 1234 and isinstance(storage.alarm, int)
