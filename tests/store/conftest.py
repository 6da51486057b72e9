"""Fixtures every store test shares: each backend on a manual clock (also behind a
ResilientStore, up on each backend and degraded), and one SQLite file that a hypothesis
test reuses across its examples. The session's Redis server (``redis_server``) is in
tests/conftest.py, shared with the delivery tests."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from chaperone._clock import ManualClock
from chaperone.store import MemoryStore, ResilientStore, SQLiteStore, Store, StoreState
from chaperone.testing.redis_server import RedisServer
from helpers.stores import SharedSQLite

_redis_prefixes = (f"test{number}:" for number in itertools.count())
"""A key prefix per Redis store a test opens, so no test sees another's keys."""


def _memory(_request: pytest.FixtureRequest, clock: ManualClock, _tmp: Path) -> Store:
    return MemoryStore(clock)


def _sqlite(_request: pytest.FixtureRequest, clock: ManualClock, tmp: Path) -> Store:
    path = tmp / "store.sqlite3"
    return SQLiteStore(path, clock, f"sqlite:///{path}")


def _redis(request: pytest.FixtureRequest, clock: ManualClock, _tmp: Path) -> Store:
    """A store on the session's Redis server under a fresh prefix, its keys deleted after."""
    from chaperone.store._redis import RedisStore

    server: RedisServer = request.getfixturevalue("redis_server")
    prefix = next(_redis_prefixes)
    request.addfinalizer(lambda: server.clear(prefix))
    return RedisStore(server.url(prefix=prefix), clock)


def _resilient(
    primary: Callable[[pytest.FixtureRequest, ManualClock, Path], Store],
) -> Callable[[pytest.FixtureRequest, ManualClock, Path], Store]:
    """Open ``primary`` behind a ResilientStore, which stays up throughout."""

    def open_up(request: pytest.FixtureRequest, clock: ManualClock, tmp: Path) -> Store:
        store = ResilientStore("test://primary", clock, lambda: primary(request, clock, tmp))
        assert store.state is StoreState.UP
        return store

    return open_up


def _degraded(_request: pytest.FixtureRequest, clock: ManualClock, tmp: Path) -> Store:
    """A ResilientStore whose SQLite file is corrupt: degraded from the start, working from
    memory."""
    path = tmp / "corrupt.sqlite3"
    path.write_bytes(b"not a database " * 512)
    url = f"sqlite:///{path}"
    store = ResilientStore(url, clock, lambda: SQLiteStore(path, clock, url))
    assert store.state is StoreState.DEGRADED
    return store


BACKENDS: dict[str, Callable[[pytest.FixtureRequest, ManualClock, Path], Store]] = {
    "memory": _memory,
    "sqlite": _sqlite,
    "redis": _redis,
    "resilient-memory": _resilient(_memory),
    "resilient-sqlite": _resilient(_sqlite),
    "resilient-redis": _resilient(_redis),
    "degraded": _degraded,
}
"""How to open each backend the contract tests run on, by name."""


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(params=sorted(BACKENDS))
def store(request: pytest.FixtureRequest, clock: ManualClock, tmp_path: Path) -> Iterator[Store]:
    opened = BACKENDS[request.param](request, clock, tmp_path)
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def shared_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedSQLite]:
    clock = ManualClock()
    path = tmp_path_factory.mktemp("model") / "model.sqlite3"
    opened = SQLiteStore(path, clock, f"sqlite:///{path}")
    yield SharedSQLite(clock, opened, itertools.count())
    opened.close()
