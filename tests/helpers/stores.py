"""Shared by the store tests (their fixtures are in tests/store/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import attrs

from chaperone._clock import ManualClock
from chaperone.store import SQLiteStore


@attrs.define
class SharedSQLite:
    """One SQLite file for every example of a property test (opening a file costs more than
    a run): each example clears what it uses or takes fresh names from ``runs``."""

    clock: ManualClock
    store: SQLiteStore
    runs: Iterator[int]
