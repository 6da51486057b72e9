"""Fixtures every store test shares: each backend on a manual clock, and one SQLite file
that a hypothesis test reuses across its examples."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from chaperone._clock import ManualClock
from chaperone.store import MemoryStore, SQLiteStore, Store
from helpers.stores import SharedSQLite


def _memory(clock: ManualClock, _tmp: Path) -> Store:
    return MemoryStore(clock)


def _sqlite(clock: ManualClock, tmp: Path) -> Store:
    path = tmp / "store.sqlite3"
    return SQLiteStore(path, clock, f"sqlite:///{path}")


BACKENDS: dict[str, Callable[[ManualClock, Path], Store]] = {"memory": _memory, "sqlite": _sqlite}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(params=sorted(BACKENDS))
def store(request: pytest.FixtureRequest, clock: ManualClock, tmp_path: Path) -> Iterator[Store]:
    opened = BACKENDS[request.param](clock, tmp_path)
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def shared_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedSQLite]:
    clock = ManualClock()
    path = tmp_path_factory.mktemp("model") / "model.sqlite3"
    opened = SQLiteStore(path, clock, f"sqlite:///{path}")
    yield SharedSQLite(clock, opened, itertools.count())
    opened.close()
