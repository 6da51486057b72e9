"""The stores the incident tests run on: a SQLite file, and the session's Redis server
under a fresh key prefix (skipped where there is none, unless CHAPERONE_TEST_REDIS says
it is required). ``open_store`` opens one more connection to the same store, as another
process would.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from chaperone import ManualClock
from chaperone.store import SQLiteStore, Store
from chaperone.testing.redis_server import RedisServer

_prefixes = (f"incidentstest{number}:" for number in itertools.count())


@pytest.fixture
def clock() -> ManualClock:
    """A clock that moves only when told to."""
    return ManualClock()


@pytest.fixture(params=["sqlite", "redis"])
def open_store(
    request: pytest.FixtureRequest, clock: ManualClock, tmp_path: Path
) -> Iterator[Callable[[], Store]]:
    """Opens a connection to one real store shared by processes: a SQLite file, or Redis
    (its keys deleted after the test).
    """
    opened: list[Store] = []
    if request.param == "sqlite":
        path = tmp_path / "store.sqlite3"

        def connect() -> Store:
            opened.append(SQLiteStore(path, clock, f"sqlite:///{path}"))
            return opened[-1]

        yield connect
        for store in opened:
            store.close()
        return
    from chaperone.store._redis import RedisStore

    server: RedisServer = request.getfixturevalue("redis_server")
    prefix = next(_prefixes)

    def connect_redis() -> Store:
        opened.append(RedisStore(server.url(prefix=prefix), clock))
        return opened[-1]

    yield connect_redis
    for store in opened:
        store.close()
    server.clear(prefix)


@pytest.fixture
def store(open_store: Callable[[], Store]) -> Store:
    """One connection to the test's store."""
    return open_store()
