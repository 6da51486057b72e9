"""Shared by the store tests (their fixtures are in tests/store/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import attrs

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
