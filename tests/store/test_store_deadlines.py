"""Deadline indexes (schedule, unschedule, due) on every backend, against a model, and at scale."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaperone._clock import ManualClock
from chaperone._exceptions import StoreError
from chaperone.store import MemoryStore, SQLiteStore, Store
from chaperone.store._sqlite import _DUE
from helpers.stores import SharedSQLite

MANY = 100_000
"""Members in the large index of the scale tests."""
START = 1_700_000_000.0
"""A Unix time to schedule from."""


class TestSchedule:
    def test_due_returns_members_at_or_before_until(self, store: Store) -> None:
        """Due lists the members whose time is at most until, as (member, at)."""
        store.schedule("jobs", "early", START + 1)
        store.schedule("jobs", "exact", START + 5)
        store.schedule("jobs", "late", START + 5.000001)
        assert store.due("jobs", START + 5, 10) == [("early", START + 1), ("exact", START + 5)]

    def test_earliest_first_regardless_of_insertion_order(self, store: Store) -> None:
        """Members come out by time, not by when they were scheduled."""
        for member, offset in [("c", 30), ("a", 10), ("d", 40), ("b", 20)]:
            store.schedule("jobs", member, START + offset)
        assert [member for member, _ in store.due("jobs", START + 100, 10)] == list("abcd")

    def test_ties_come_in_member_order(self, store: Store) -> None:
        """Members due at the same instant come in member (code point) order on every backend."""
        for member in ["b", "a", "é", "a\x00", "Z"]:
            store.schedule("jobs", member, START)
        assert store.due("jobs", START, 10) == [
            (member, START) for member in ["Z", "a", "a\x00", "b", "é"]
        ]

    def test_limit_takes_the_earliest(self, store: Store) -> None:
        """A limit smaller than the due set keeps the earliest members."""
        for offset in range(10):
            store.schedule("jobs", f"m{offset}", START + offset)
        assert store.due("jobs", START + 100, 3) == [(f"m{i}", START + i) for i in range(3)]
        assert store.due("jobs", START + 100, 0) == []

    def test_due_leaves_members_in_the_index(self, store: Store) -> None:
        """Reading due members does not remove them: the same call answers the same."""
        store.schedule("jobs", "m", START)
        assert store.due("jobs", START, 10) == [("m", START)]
        assert store.due("jobs", START, 10) == [("m", START)]

    def test_rescheduling_replaces_the_time(self, store: Store) -> None:
        """Scheduling a member again moves it, rather than adding a second entry."""
        store.schedule("jobs", "m", START)
        store.schedule("jobs", "other", START + 5)
        store.schedule("jobs", "m", START + 10)
        assert store.due("jobs", START + 100, 10) == [("other", START + 5), ("m", START + 10)]
        store.schedule("jobs", "m", START - 10)
        assert store.due("jobs", START, 10) == [("m", START - 10)]

    def test_unschedule_reports_presence(self, store: Store) -> None:
        """Unschedule removes a member and says whether it was there."""
        store.schedule("jobs", "m", START)
        assert store.unschedule("jobs", "m")
        assert not store.unschedule("jobs", "m")
        assert not store.unschedule("jobs", "never")
        assert store.due("jobs", math.inf, 10) == []

    def test_indexes_are_independent(self, store: Store) -> None:
        """The same member in two indexes has two times; removing one leaves the other."""
        store.schedule("a", "m", START)
        store.schedule("b", "m", START + 1)
        assert store.due("a", START + 5, 10) == [("m", START)]
        assert store.due("b", START + 5, 10) == [("m", START + 1)]
        assert store.unschedule("a", "m")
        assert store.due("b", START + 5, 10) == [("m", START + 1)]
        assert store.due("unknown", START + 5, 10) == []

    def test_deadlines_are_separate_from_keys(self, store: Store, clock: ManualClock) -> None:
        """Deadlines do not expire with the clock and are not touched by key deletion."""
        store.schedule("jobs", "m", START)
        store.delete_prefix("")
        clock.advance(10 * 365 * 86400)
        assert store.keys("") == []
        assert store.due("jobs", START, 10) == [("m", START)]

    def test_times_survive_exactly(self, store: Store) -> None:
        """Fractional and negative times, and integer ones, come back as the same floats."""
        times = {"frac": START + 0.123456789, "neg": -12.5, "int": 7}
        for member, at in times.items():
            store.schedule("jobs", member, at)
        due = store.due("jobs", math.inf, 10)
        assert due == [("neg", -12.5), ("int", 7.0), ("frac", START + 0.123456789)]
        assert all(type(at) is float for _, at in due)

    def test_infinite_until_and_minus_infinity(self, store: Store) -> None:
        """Until may be +inf (everything) or -inf (nothing)."""
        store.schedule("jobs", "m", START)
        assert store.due("jobs", math.inf, 10) == [("m", START)]
        assert store.due("jobs", -math.inf, 10) == []

    @pytest.mark.parametrize("at", [math.nan, math.inf, -math.inf])
    def test_rejects_non_finite_times(self, store: Store, at: float) -> None:
        """A time that is not a finite number is a programming error and stores nothing."""
        with pytest.raises(ValueError, match="at must be"):
            store.schedule("jobs", "m", at)
        assert store.due("jobs", math.inf, 10) == []

    def test_rejects_bad_due_arguments(self, store: Store) -> None:
        """A NaN until or a negative limit is a programming error."""
        store.schedule("jobs", "m", START)
        with pytest.raises(ValueError, match="until"):
            store.due("jobs", math.nan, 10)
        with pytest.raises(ValueError, match="limit"):
            store.due("jobs", START, -1)

    @pytest.mark.parametrize(
        "use",
        [
            lambda s: s.schedule("i", "m", 1.0),
            lambda s: s.unschedule("i", "m"),
            lambda s: s.due("i", 1.0, 1),
        ],
        ids=["schedule", "unschedule", "due"],
    )
    def test_closed_store_refuses(self, store: Store, use: Callable[[Store], Any]) -> None:
        """Every deadline operation on a closed store raises StoreError."""
        store.close()
        with pytest.raises(StoreError, match="closed"):
            use(store)


class TestSharedFile:
    def test_two_stores_share_an_index(self, tmp_path: Path) -> None:
        """What one connection schedules the other sees and can unschedule."""
        clock = ManualClock()
        path = tmp_path / "s.sqlite3"
        first = SQLiteStore(path, clock, f"sqlite:///{path}")
        second = SQLiteStore(path, clock, f"sqlite:///{path}")
        try:
            first.schedule("jobs", "m", START)
            assert second.due("jobs", START, 10) == [("m", START)]
            assert second.unschedule("jobs", "m")
            assert first.due("jobs", START, 10) == []
        finally:
            first.close()
            second.close()

    def test_index_survives_reopening(self, tmp_path: Path) -> None:
        """Scheduled members persist after the store is closed and opened again."""
        clock = ManualClock()
        path = tmp_path / "s.sqlite3"
        store = SQLiteStore(path, clock, f"sqlite:///{path}")
        store.schedule("jobs", "m", START)
        store.close()
        store = SQLiteStore(path, clock, f"sqlite:///{path}")
        try:
            assert store.due("jobs", START, 10) == [("m", START)]
        finally:
            store.close()


# --- scale: due() reads the index, not the table -----------------------------------------


@attrs.frozen
class Crowded:
    """A SQLite store holding MANY members in one index, none due before START."""

    store: SQLiteStore
    conn: sqlite3.Connection


@pytest.fixture(scope="module")
def crowded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Crowded]:
    """Bulk-load the index through the store's own connection (schedule() one by one is slow)."""
    path = tmp_path_factory.mktemp("crowded") / "crowded.sqlite3"
    store = SQLiteStore(path, ManualClock(), f"sqlite:///{path}")
    conn = store._conn
    assert conn is not None
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO deadlines (idx, member, at) VALUES ('jobs', ?, ?)",
        ((f"job-{i}", START + i) for i in range(MANY)),
    )
    conn.execute("COMMIT")
    store.schedule("other", "m", START - 1)  # a smaller index sorting before "jobs"
    yield Crowded(store, conn)
    store.close()


def _plan(conn: sqlite3.Connection, params: dict[str, Any]) -> list[str]:
    return [str(row[3]) for row in conn.execute("EXPLAIN QUERY PLAN " + _DUE, params)]


def _vm_steps(conn: sqlite3.Connection, call: Callable[[], object]) -> int:
    """Count the SQLite virtual-machine instructions ``call`` runs on ``conn``."""
    steps = 0

    def tick() -> int:
        nonlocal steps
        steps += 1
        return 0

    conn.set_progress_handler(tick, 1)
    try:
        call()
    finally:
        conn.set_progress_handler(None, 1)
    return steps


class TestScale:
    def test_due_query_searches_the_index(self, crowded: Crowded) -> None:
        """With 100,000 members, none due, due()'s query plan is an index search, never a scan."""
        assert crowded.store.due("jobs", START - 1, 100) == []
        plan = _plan(crowded.conn, {"index": "jobs", "until": START - 1, "limit": 100})
        assert any("USING INDEX" in step or "USING COVERING INDEX" in step for step in plan), plan
        assert not any("SCAN" in step for step in plan), plan
        assert not any("TEMP B-TREE" in step for step in plan), plan  # no sort of the matches

    def test_plan_holds_after_analyze(self, crowded: Crowded) -> None:
        """Statistics from ANALYZE do not tempt the planner into a scan or a sort."""
        crowded.conn.execute("ANALYZE")
        try:
            plan = _plan(crowded.conn, {"index": "jobs", "until": START + MANY, "limit": 100})
        finally:
            crowded.conn.execute("DROP TABLE IF EXISTS sqlite_stat1")
        assert not any("SCAN" in step or "TEMP B-TREE" in step for step in plan), plan

    def test_nothing_due_costs_a_few_instructions(self, crowded: Crowded) -> None:
        """A tick over 100,000 members of which none is due runs a handful of VM steps."""
        steps = _vm_steps(crowded.conn, lambda: crowded.store.due("jobs", START - 1, 1000))
        assert steps < 100, steps

    def test_cost_grows_with_results_not_members(self, crowded: Crowded) -> None:
        """Reading k due members costs about k index entries, whatever the index size."""
        got: list[list[tuple[str, float]]] = []
        few = _vm_steps(crowded.conn, lambda: got.append(crowded.store.due("jobs", START + 9, 50)))
        many = _vm_steps(
            crowded.conn, lambda: got.append(crowded.store.due("jobs", START + MANY, 1000))
        )
        assert [len(result) for result in got] == [10, 1000]
        assert got[1][:3] == [(f"job-{i}", START + i) for i in range(3)]
        assert few < 500, few
        assert many < 100 * 1000, many  # a scan of the table would take several per member

    def test_memory_due_compares_only_what_it_returns(self) -> None:
        """The memory backend stops at the first member not due: it looks at k + 1 entries."""

        class CountingUntil(float):
            """A time that counts how often the index compares an entry with it."""

            compared = 0

            def __ge__(self, other: object) -> bool:
                CountingUntil.compared += 1
                return float(self) >= other  # type: ignore[operator]

        store = MemoryStore(ManualClock())
        try:
            for i in range(20_000):
                store.schedule("jobs", f"job-{i}", START + i)
            assert store.due("jobs", CountingUntil(START - 1), 1000) == []
            assert CountingUntil.compared <= 1
            CountingUntil.compared = 0
            assert len(store.due("jobs", CountingUntil(START + 9), 1000)) == 10
            assert CountingUntil.compared <= 11
        finally:
            store.close()


# --- property: both backends behave like a sorted-list model ------------------------------

_members = st.text(alphabet="ab\x00é\U0010ffff", max_size=2)
_times = st.sampled_from([-1.5, 0.0, 1.0, 1.0000001, 2.5, 1e9, START])
_until = st.sampled_from([-math.inf, -1.5, 0.0, 1.0, 2.0, 1e9, START, math.inf])

_operations = st.lists(
    st.one_of(
        st.tuples(st.just("schedule"), st.sampled_from("xy"), _members, _times),
        st.tuples(st.just("unschedule"), st.sampled_from("xy"), _members),
        st.tuples(st.just("due"), st.sampled_from("xy"), _until, st.integers(0, 6)),
    ),
    max_size=50,
)


class DeadlineModel:
    """The deadline contract in its plainest form: a dict per index, sorted on every read."""

    def __init__(self) -> None:
        self.indexes: dict[str, dict[str, float]] = {}

    def schedule(self, index: str, member: str, at: float) -> None:
        self.indexes.setdefault(index, {})[member] = at

    def unschedule(self, index: str, member: str) -> bool:
        return self.indexes.get(index, {}).pop(member, None) is not None

    def due(self, index: str, until: float, limit: int) -> list[tuple[str, float]]:
        members = self.indexes.get(index, {})
        ordered = sorted((at, member) for member, at in members.items() if at <= until)
        return [(member, at) for at, member in ordered[:limit]]


class TestAgainstModel:
    @settings(max_examples=150, deadline=None)
    @given(operations=_operations)
    def test_backends_match_the_model(
        self, shared_sqlite: SharedSQLite, operations: list[tuple[Any, ...]]
    ) -> None:
        """Any sequence of schedule, unschedule and due answers alike on both backends."""
        run = next(shared_sqlite.runs)
        memory = MemoryStore(ManualClock())
        model = DeadlineModel()
        try:
            for step, (name, index, *args) in enumerate(operations):
                scoped = f"run {run}: {index}"
                expected = getattr(model, name)(scoped, *args)
                for backend in (memory, shared_sqlite.store):
                    got = getattr(backend, name)(scoped, *args)
                    assert got == expected, (step, name, index, args, type(backend).__name__)
            for index in "xy":
                scoped = f"run {run}: {index}"
                expected = model.due(scoped, math.inf, 1000)
                assert memory.due(scoped, math.inf, 1000) == expected
                assert shared_sqlite.store.due(scoped, math.inf, 1000) == expected
        finally:
            memory.close()
