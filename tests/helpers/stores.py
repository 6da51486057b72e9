"""Shared by the store tests (their fixtures are in tests/store/conftest.py)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from chaperone._clock import ManualClock
from chaperone._exceptions import StoreError
from chaperone.store import SQLiteStore, Store


@attrs.define
class SharedSQLite:
    """One SQLite file for every example of a property test (opening a file costs more than
    a run): each example clears what it uses or takes fresh names from ``runs``."""

    clock: ManualClock
    store: SQLiteStore
    runs: Iterator[int]


class SwitchedStore:
    """A real store behind a switch, standing for one that goes away: while ``away`` is
    set every call raises StoreError without reaching ``inner``; with ``budget`` set, that
    many more calls go through and then it goes away. Counts the calls that reached it."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.url = inner.url
        self.away = False
        self.budget: int | None = None
        self.calls = 0

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.inner, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.budget is not None:
                if self.budget == 0:
                    self.away, self.budget = True, None
                else:
                    self.budget -= 1
            if self.away:
                raise StoreError(f"the store is away ({name})")
            self.calls += 1
            return method(*args, **kwargs)

        return call


_redis_prefixes = itertools.count()


def connect(backend: str, request: pytest.FixtureRequest, clock: ManualClock) -> Store:
    """A new connection to the test's store: its SQLite file (``shared.db`` in its
    ``tmp_path``), or its prefix on the session's Redis server (whose keys are deleted
    after the test). Every call of one test reaches the same store."""
    if backend == "sqlite":
        folder: Path = request.getfixturevalue("tmp_path")
        path = folder / "shared.db"
        return SQLiteStore(path, clock, f"sqlite:///{path}")
    from chaperone.store._redis import RedisStore

    server = request.getfixturevalue("redis_server")
    prefix = getattr(request.node, "_shared_prefix", None)
    if prefix is None:
        prefix = request.node._shared_prefix = f"shared{next(_redis_prefixes)}:"
        request.addfinalizer(lambda: server.clear(prefix))
    return RedisStore(server.url(prefix=prefix), clock)
