"""worker/stores/__init__.py: SNAPSHOT_STORE picks the store; a wrong value names the var."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.snapshots.fake_d1 import FakeD1
from worker.stores import open_store
from worker.stores.d1 import D1Store
from worker.stores.http_sink import HttpSink


def test_d1_is_the_default_and_http_is_chosen_by_name():
    assert isinstance(open_store(SimpleNamespace(USAGE_DB=FakeD1())), D1Store)
    sink = open_store(SimpleNamespace(SNAPSHOT_STORE=" HTTP ", SNAPSHOT_SINK_URL="http://127.0.0.1:9/in",
                                      SNAPSHOT_SINK_SECRET="s", ))
    assert isinstance(sink, HttpSink) and sink.url == "http://127.0.0.1:9/in"


def test_an_unknown_store_is_refused_naming_the_var():
    with pytest.raises(ValueError, match="SNAPSHOT_STORE: expected d1 or http, got 'kafka'"):
        open_store(SimpleNamespace(SNAPSHOT_STORE="kafka"))
