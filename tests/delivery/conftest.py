"""Fixtures of the delivery tests: a manual clock, and each store backend on it (memory,
SQLite, and Redis on the session's server under a fresh key prefix)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaperone import ManualClock
from chaperone.store import MemoryStore, SQLiteStore, Store
from chaperone.testing.redis_server import RedisServer

_prefixes = (f"delivery{number}:" for number in itertools.count())

BACKENDS = ("memory", "sqlite", "redis")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def open_backend(
    name: str, request: pytest.FixtureRequest, clock: ManualClock, tmp_path: Path
) -> Store:
    """A fresh store of backend ``name`` on ``clock`` (a second call on SQLite or Redis
    opens the same data, as another process would)."""
    if name == "memory":
        return MemoryStore(clock)
    if name == "sqlite":
        path = tmp_path / "store.sqlite3"
        return SQLiteStore(path, clock, f"sqlite:///{path}")
    from chaperone.store._redis import RedisStore

    server: RedisServer = request.getfixturevalue("redis_server")
    if not hasattr(request.node, "_delivery_prefix"):
        prefix = next(_prefixes)
        request.node._delivery_prefix = prefix
        request.addfinalizer(lambda: server.clear(prefix))
    return RedisStore(server.url(prefix=request.node._delivery_prefix), clock)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The name of a store backend (each test runs on all three)."""
    name: str = request.param
    return name


@pytest.fixture
def store(
    backend: str, request: pytest.FixtureRequest, clock: ManualClock, tmp_path: Path
) -> Iterator[Store]:
    opened = open_backend(backend, request, clock, tmp_path)
    yield opened
    opened.close()
