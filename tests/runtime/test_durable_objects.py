"""Durable Object semantics: RPC copies, refusals, one event at a time, errors, eviction."""
from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.runtime.conftest import edge, run


def test_rpc_arguments_and_results_are_copies(state):
    async def body():
        async with edge(state) as e:
            stub = e.env.COUNTERS.getByName("copy")
            sent = {"items": [1, 2], "inner": {"a": 1}}
            returned = await stub.keep(sent)
            # the callee mutated its copy of the argument: the caller's dict is untouched
            assert "mutated_by_callee" not in sent
            assert returned["mutated_by_callee"] is True
            # mutating what the caller got (or what it sent) does not reach the object
            returned["items"].append(99)
            sent["items"].append(42)
            kept = await stub.kept_value()
            assert kept["items"] == [1, 2]
            got = await stub.give()
            got["items"].append(3)
            assert (await stub.kept_value())["items"] == [1, 2]
            # results arrive as JsDict (attribute access), as python_from_rpc gives them
            assert kept.inner.a == 1
    run(body())


def test_tuple_argument_refused_with_the_sdk_message(state):
    async def body():
        async with edge(state) as e, aiohttp.ClientSession() as s:
            async with s.get(f"{e.url}/tuple") as r:
                assert r.status == 400
                assert (await r.json())["error"] == "<class 'tuple'> cannot be sent over RPC."
            stub = e.env.COUNTERS.getByName("refuse")
            for bad in (bytearray(b"x"), lambda: 1, object(), {"k": (1,)}):
                with pytest.raises(TypeError, match="cannot be sent over RPC"):
                    await stub.add(bad)
            # refused before delivery: the object never saw a call
            assert await stub.total() == 0
            # a result the SDK cannot send is an error at the caller too
            with pytest.raises(Exception, match="cannot be sent over RPC"):
                await stub.tuple_result()
    run(body())


def test_exception_in_object_reaches_caller_and_writes_before_it_are_committed(state):
    async def body():
        async with edge(state) as e, aiohttp.ClientSession() as s:
            async with s.get(f"{e.url}/fail") as r:
                assert r.status == 503
                data = await r.json()
                assert data == {"caught": "RpcError", "message": "ValueError: bucket exploded"}
            path = e.env.COUNTERS.storage_path("f")
        import sqlite3
        with sqlite3.connect(path) as conn:
            assert conn.execute("SELECT v FROM kv WHERE k = 'before_fail'").fetchone() == (1,)
    run(body())


def test_concurrent_calls_to_one_object_are_serialized(state):
    async def body():
        async with edge(state) as e, aiohttp.ClientSession() as s:
            async def one():
                async with s.get(f"{e.url}/slow_add/hot") as r:
                    assert r.status == 200
                    return (await r.json())["total"]
            totals = await asyncio.gather(*(one() for _ in range(40)))
            # each event saw the previous one's write: no lost update, every total distinct
            assert sorted(totals) == list(range(1, 41))
            assert await e.env.COUNTERS.getByName("hot").total() == 40
    run(body())


def test_without_the_per_object_lock_the_same_calls_lose_updates(state):
    """Control for the test above: the fixture method does interleave when nothing serializes it."""
    async def body():
        async with edge(state) as e:
            stub = e.env.COUNTERS.getByName("unlocked")
            await stub.total()  # create the instance
            instance = e.env.COUNTERS.live_instance("unlocked")   # called directly: no input gate
            await asyncio.gather(*(instance.slow_add(1) for _ in range(20)))
            assert await stub.total() < 20
    run(body())


def test_different_objects_run_concurrently_and_keep_separate_state(state):
    async def body():
        async with edge(state) as e:
            stubs = [e.env.COUNTERS.getByName(f"c{i}") for i in range(5)]
            await asyncio.gather(*(s.slow_add(1) for s in stubs for _ in range(4)))
            assert [await s.total() for s in stubs] == [4] * 5
            assert await stubs[2].object_name() == "c2"  # ctx.id.name is the getByName name
    run(body())


def test_ids_are_deterministic_and_stubs_by_id_reach_the_same_object(state):
    async def body():
        async with edge(state) as e:
            ns = e.env.COUNTERS
            a, b = ns.idFromName("x"), ns.idFromName("x")
            assert a.toString() == b.toString() and len(a.toString()) == 64 and a.equals(b)
            assert ns.idFromName("y").toString() != a.toString()
            assert ns.newUniqueId().toString() != ns.newUniqueId().toString()
            await ns.getByName("x").add(5)
            assert await ns.get(ns.idFromString(a.toString())).total() == 5
    run(body())


def test_live_objects_are_bounded_and_evicted_ones_keep_their_state(state):
    async def body():
        async with edge(state, max_live_objects=3) as e:
            ns = e.env.COUNTERS
            for i in range(8):
                await ns.getByName(f"o{i}").add(i + 1)
            assert ns.live_count() <= 3 and ns.evictions >= 5
            assert await ns.getByName("o0").total() == 1  # re-created from its SQLite file
    run(body())


def test_more_than_100_bound_parameters_is_refused(state):
    async def body():
        async with edge(state) as e:
            stub = e.env.COUNTERS.getByName("params")
            assert await stub.many_params(100) == list(range(100))
            with pytest.raises(Exception, match="too many SQL variables: 101"):
                await stub.many_params(101)
    run(body())


def test_a_call_back_into_an_object_awaiting_rpc_does_not_deadlock(state):
    async def body():
        async with edge(state) as e:
            ns = e.env.COUNTERS
            await ns.getByName("A").add(3)
            assert await asyncio.wait_for(ns.getByName("A").bounce("B"), 2) == 3
    run(body())


def test_block_concurrency_while_in_the_constructor_holds_the_first_event(state):
    async def body():
        async with edge(state) as e:
            assert await e.env.COUNTERS.getByName("warm").is_ready() is True
    run(body())


def test_key_value_storage(state):
    async def body():
        async with edge(state) as e:
            out = await e.env.COUNTERS.getByName("kv").kv_roundtrip()
            assert out == {"got": {"n": 1}, "many": {"a": {"n": 1}, "b": [1, 2]}, "listed": {"b": [1, 2]},
                           "deleted": True, "after": None}
    run(body())


def test_storage_transactions_keep_all_their_writes_or_none(state):
    async def body():
        async with edge(state) as e:
            stub = e.env.COUNTERS.getByName("txn")
            assert await stub.add_in_transaction(5, False) == [5, 5, 5]
            assert await stub.add_in_transaction(7, True) == [5, 5, 5]     # both bodies raised: rolled back
        async with edge(state) as e:                                        # and what stayed is committed
            assert await e.env.COUNTERS.getByName("txn").add_in_transaction(1, False) == [6, 1, 6]
    run(body())
