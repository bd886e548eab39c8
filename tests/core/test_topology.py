"""src/tollgate/topology.py and envvars.py: the pipeline's vars, each read in one place."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from src.tollgate import topology
from src.tollgate.envvars import env_bool, env_int, env_str


def test_defaults_when_unset_or_empty():
    for env in (SimpleNamespace(), SimpleNamespace(OUTBOX_SHARDS="", SNAPSHOT_DELAY_MS="", SEED_FROM_STORE="")):
        assert topology.outbox_shards(env) == topology.DEFAULT_OUTBOX_SHARDS == 16
        assert topology.snapshot_delay_ms(env) == topology.DEFAULT_SNAPSHOT_DELAY_MS == 5000
        assert topology.seed_from_store(env) is False
        assert topology.flush_time_budget_ms(env) == 20_000 and topology.flush_subrequest_budget(env) == 900


def test_values_are_read_from_text_as_wrangler_vars_are():
    env = SimpleNamespace(OUTBOX_SHARDS=" 4 ", SNAPSHOT_DELAY_MS="0", SEED_FROM_STORE="Yes")
    assert (topology.outbox_shards(env), topology.snapshot_delay_ms(env), topology.seed_from_store(env)) == (4, 0, True)


@pytest.mark.parametrize("name, value, reader, message", [
    ("OUTBOX_SHARDS", "0", topology.outbox_shards, "OUTBOX_SHARDS: expected an integer >= 1, got 0"),
    ("OUTBOX_SHARDS", "four", topology.outbox_shards, "OUTBOX_SHARDS: expected an integer, got 'four'"),
    ("SNAPSHOT_DELAY_MS", "-5", topology.snapshot_delay_ms, "SNAPSHOT_DELAY_MS: expected an integer >= 0"),
    ("SEED_FROM_STORE", "maybe", topology.seed_from_store, "SEED_FROM_STORE: expected true or false"),
    ("FLUSH_TIME_BUDGET_MS", "0", topology.flush_time_budget_ms, "FLUSH_TIME_BUDGET_MS: expected an integer >= 1"),
    ("FLUSH_SUBREQUEST_BUDGET", "7", topology.flush_subrequest_budget,
     "FLUSH_SUBREQUEST_BUDGET: expected an integer >= 8"),
])
def test_a_bad_value_names_the_var(name, value, reader, message):
    with pytest.raises(ValueError) as err:
        reader(SimpleNamespace(**{name: value}))
    assert str(err.value).startswith(message)


def test_env_readers_stringify_and_default():
    env = SimpleNamespace(A=5, B=None)
    assert env_str(env, "A") == "5" and env_str(env, "B", "d") == "d" and env_str(env, "C") is None
    assert env_int(env, "A", 1) == 5 and env_int(env, "C", 7) == 7
    assert env_bool(SimpleNamespace(F="off"), "F", True) is False and env_bool(env, "C", True) is True
