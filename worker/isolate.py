"""State that lives as long as the isolate: caches and batches kept between requests.

Why a helper: on the platform a module global *is* per isolate (one Worker per
isolate, module state kept across its requests). The local runtime runs several
isolates in one process (one per `LocalEdge`: each test starts its own), and there
a module global would carry one test's state into the next; so there the state
follows the isolate's `Env`, which each `LocalEdge` has its own of.
"""
from __future__ import annotations

import weakref
from typing import Any, Callable, TypeVar

T = TypeVar("T")


class PerIsolate:
    """One `T` per isolate, made by `factory` on first use."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._platform: Any = None
        self._local: "weakref.WeakKeyDictionary[Any, Any]" = weakref.WeakKeyDictionary()

    def get(self, env: Any) -> T:
        if type(env).__module__.startswith("src.localedge"):
            found = self._local.get(env)
            if found is None:
                found = self._local[env] = self._factory()
            return found
        if self._platform is None:
            self._platform = self._factory()
        return self._platform

    def clear(self) -> None:
        """Forget every isolate's state (tests)."""
        self._platform = None
        self._local = weakref.WeakKeyDictionary()
