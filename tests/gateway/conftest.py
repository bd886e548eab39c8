"""Every gateway test runs on both runtimes: the local CPython runtime and real workerd
(`runtime` is parametrized in tests/conftest.py; `local_only` narrows a test to the
local runtime, with the reason written down)."""
from __future__ import annotations

from typing import Iterator

import pytest

from tests.gateway import support


@pytest.fixture(autouse=True)
def _runtime_under_test(runtime: str) -> Iterator[str]:
    support.RUNTIME["name"] = runtime
    yield runtime
    support.RUNTIME["name"] = "local"
