"""The Redis store shared by processes: the twin of test_sqlite_processes.py's race.

Eight spawned processes open the store by URL on their own system clocks and race for
the same keys, stream, counter and queue on one real Redis server
(``helpers.store_processes``).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator

import pytest

from chaperone.testing.redis_server import RedisServer
from helpers.store_processes import AcrossProcessesChecks, Outcome, run_workers

KEYS_PER_ROUND = 20
"""Keys the workers race for between two meetings at the barrier (meeting per key, as
the SQLite twin does, costs seconds on two cores; Redis answers faster than that)."""
PREFIX = "procs:"


@pytest.fixture(scope="module")
def outcome(redis_server: RedisServer) -> Iterator[Outcome]:
    """One run of the workers, shared by the tests that check what it left behind."""
    redis_server.clear(PREFIX)
    yield run_workers(redis_server.url(prefix=PREFIX), keys_per_round=KEYS_PER_ROUND)
    redis_server.clear(PREFIX)


class TestAcrossProcesses(AcrossProcessesChecks):
    """Eight processes on one Redis server."""


@pytest.fixture(autouse=True)
def _no_leftover_processes() -> Iterator[None]:
    yield
    assert multiprocessing.active_children() == []
