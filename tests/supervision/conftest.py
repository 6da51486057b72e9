"""Fixtures of the supervision tests: a monitor's runtime and a job process's supervisor
on one SQLite file, on the test module's ``clock``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chaperone import Chaperone, ManualClock
from chaperone.supervision import Supervisor
from helpers.fatigue import sqlite_store
from helpers.runtime import GROUPING_OFF, make_runtime


@pytest.fixture
def runtime(clock: ManualClock, tmp_path: Path) -> Iterator[Chaperone]:
    """A monitor's runtime on a SQLite file, keeping the alert history."""
    with make_runtime(
        store=sqlite_store(tmp_path / "c.db", clock),
        clock=clock,
        channels=("database",),
        grouping=GROUPING_OFF,
    ) as made:
        yield made


@pytest.fixture
def supervisor(clock: ManualClock, tmp_path: Path) -> Iterator[Supervisor]:
    """A job process's supervisor on its own connection to the same file."""
    made = Supervisor(sqlite_store(tmp_path / "c.db", clock), clock)
    yield made
    made.store.close()
