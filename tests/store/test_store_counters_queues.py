"""Counters (incr, get_many) and FIFO queues (push, pop) on every backend and against a model.

The race of eight processes over one counter and one queue is in test_sqlite_processes.py,
sharing its spawned workers.
"""

from __future__ import annotations

import re
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaperone._clock import ManualClock
from chaperone._exceptions import StoreError
from chaperone.store import MemoryStore, Store
from helpers.stores import SharedSQLite

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
NOT_COUNTERS = ["abc", "", "1.5", "05", "+1", " 1", "1 ", "-0", "1_000", "٣", str(INT64_MAX + 1)]
"""Values that Python's int() may read but that are not canonical 64-bit integers."""


def _in_threads(count: int, work: Callable[[int], None]) -> None:
    """Run ``work(i)`` in ``count`` threads released together; re-raise the first failure."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            work(index)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    if errors:
        raise errors[0]


class TestIncr:
    def test_absent_key_starts_at_zero(self, store: Store) -> None:
        """The first incr of an unknown key returns the amount and stores it as text."""
        assert store.incr("n") == 1
        assert store.incr("m", 5) == 5
        assert store.get("n") == "1"
        assert store.get("m") == "5"

    def test_adds_and_returns_the_new_value(self, store: Store) -> None:
        """Each call adds its amount, negative and zero amounts included."""
        assert [store.incr("n", amount) for amount in [1, 2, -5, 0, 10]] == [1, 3, -2, -2, 8]
        assert store.get("n") == "8"

    def test_adds_to_a_value_set_as_text(self, store: Store) -> None:
        """A counter may start as a value written with set()."""
        store.set("n", "41")
        assert store.incr("n") == 42
        store.set("neg", "-7")
        assert store.incr("neg", 7) == 0

    def test_ttl_applies_when_creating(self, store: Store, clock: ManualClock) -> None:
        """A ttl given to the creating call makes the counter expire."""
        store.incr("n", ttl=10)
        clock.advance(9.5)
        assert store.get("n") == "1"
        clock.advance(0.5)
        assert store.get("n") is None

    def test_ttl_does_not_extend_an_existing_counter(
        self, store: Store, clock: ManualClock
    ) -> None:
        """A later incr with a ttl keeps the counter's first expiry (a fixed window)."""
        store.incr("n", ttl=10)
        clock.advance(6)
        assert store.incr("n", ttl=10) == 2
        clock.advance(4)
        assert store.get("n") is None

    def test_ttl_does_not_make_a_permanent_counter_expire(
        self, store: Store, clock: ManualClock
    ) -> None:
        """A counter created without ttl stays permanent when later calls pass one."""
        store.incr("n")
        store.incr("n", ttl=1)
        clock.advance(100)
        assert store.get("n") == "2"

    def test_expired_counter_restarts(self, store: Store, clock: ManualClock) -> None:
        """Once expired, a counter counts from zero again, with the new call's ttl."""
        store.incr("n", 5, ttl=10)
        clock.advance(10)
        assert store.incr("n", 1) == 1
        clock.advance(1000)
        assert store.get("n") == "1"

    def test_expired_non_integer_counts_as_absent(self, store: Store, clock: ManualClock) -> None:
        """An expired value is gone, whatever it held."""
        store.set("n", "not a number", ttl=1)
        clock.advance(1)
        assert store.incr("n", 3, ttl=5) == 3

    @pytest.mark.parametrize("value", NOT_COUNTERS)
    def test_non_integer_value_raises_naming_the_key(self, store: Store, value: str) -> None:
        """A live value that is not a canonical 64-bit integer raises ValueError and stays."""
        store.set("ratelimit:ops", value)
        with pytest.raises(ValueError, match="ratelimit:ops"):
            store.incr("ratelimit:ops")
        assert store.get("ratelimit:ops") == value

    @pytest.mark.parametrize(
        ("start", "amount", "ok"),
        [
            (INT64_MAX - 1, 1, True),
            (INT64_MAX, 1, False),
            (INT64_MAX, INT64_MIN, True),
            (INT64_MIN + 1, -1, True),
            (INT64_MIN, -1, False),
            (INT64_MIN, INT64_MAX, True),
            (1, INT64_MAX, False),
            (-2, INT64_MIN, False),
        ],
    )
    def test_stays_within_64_bits(self, store: Store, start: int, amount: int, ok: bool) -> None:
        """A sum that leaves the signed 64-bit range raises ValueError and changes nothing."""
        store.set("n", str(start))
        if ok:
            assert store.incr("n", amount) == start + amount
            assert store.get("n") == str(start + amount)
        else:
            with pytest.raises(ValueError, match="overflow"):
                store.incr("n", amount)
            assert store.get("n") == str(start)

    @pytest.mark.parametrize("amount", [2**63, -(2**63) - 1])
    def test_rejects_amount_beyond_64_bits(self, store: Store, amount: int) -> None:
        """An amount that is not a 64-bit integer is refused before touching the key."""
        with pytest.raises(ValueError, match="amount"):
            store.incr("n", amount)
        assert store.get("n") is None

    @pytest.mark.parametrize("ttl", [-1.0, float("nan"), float("inf")])
    def test_rejects_bad_ttl(self, store: Store, ttl: float) -> None:
        """A negative or non-finite ttl is a programming error."""
        with pytest.raises(ValueError, match="ttl"):
            store.incr("n", ttl=ttl)
        assert store.get("n") is None

    def test_rejects_an_amount_that_is_not_an_int(self, store: Store) -> None:
        """A float amount raises TypeError rather than turning the counter into a float."""
        with pytest.raises(TypeError, match="amount"):
            store.incr("n", 1.5)  # type: ignore[arg-type]
        assert store.get("n") is None

    def test_threads_add_up(self, store: Store) -> None:
        """Eight threads each adding 100 times leave exactly 800, each total seen once."""
        seen: list[int] = []
        lock = threading.Lock()

        def work(_: int) -> None:
            mine = [store.incr("hits") for _ in range(100)]
            with lock:
                seen.extend(mine)

        _in_threads(8, work)
        assert store.get("hits") == "800"
        assert sorted(seen) == list(range(1, 801))


class TestGetMany:
    def test_returns_only_live_keys(self, store: Store, clock: ManualClock) -> None:
        """Missing and expired keys are left out of the answer."""
        store.set("a", "1")
        store.set("b", "2", ttl=5)
        store.set("c", "3", ttl=1)
        clock.advance(1)
        assert store.get_many(["a", "b", "c", "missing"]) == {"a": "1", "b": "2"}

    def test_empty_and_repeated_keys(self, store: Store) -> None:
        """No keys give an empty dict; a key asked twice appears once."""
        store.set("a", "1")
        assert store.get_many([]) == {}
        assert store.get_many(["a", "a"]) == {"a": "1"}

    def test_odd_keys(self, store: Store) -> None:
        """Keys with quotes, NULs, wildcards and unicode are looked up exactly."""
        odd = ["", "'; DROP TABLE kv; --", "a\x00b", "%_*?", "naïve ☃ \U0001f600", "?"]
        for index, key in enumerate(odd):
            store.set(key, str(index))
        assert store.get_many([*odd, "a"]) == {key: str(i) for i, key in enumerate(odd)}

    def test_more_keys_than_one_statement_binds(self, store: Store) -> None:
        """Thousands of keys (more than one SQL statement may bind) all come back."""
        for index in range(0, 3000, 2):
            store.set(f"k{index}", str(index))
        wanted = [f"k{index}" for index in range(3000)]
        assert store.get_many(wanted) == {f"k{i}": str(i) for i in range(0, 3000, 2)}


class TestQueues:
    def test_fifo(self, store: Store) -> None:
        """Records come out oldest first, limit at a time, until the queue is empty."""
        for index in range(5):
            store.push("q", f"r{index}")
        assert store.pop("q", 2) == ["r0", "r1"]
        store.push("q", "r5")
        assert store.pop("q", 10) == ["r2", "r3", "r4", "r5"]
        assert store.pop("q", 10) == []

    def test_zero_limit_and_unknown_queue(self, store: Store) -> None:
        """A zero limit pops nothing and an unknown queue is empty."""
        store.push("q", "r")
        assert store.pop("q", 0) == []
        assert store.pop("nope", 5) == []
        assert store.pop("q", 5) == ["r"]

    def test_queues_are_independent(self, store: Store) -> None:
        """Popping one queue leaves another alone."""
        store.push("a", "a0")
        store.push("b", "b0")
        store.push("a", "a1")
        assert store.pop("b", 5) == ["b0"]
        assert store.pop("a", 5) == ["a0", "a1"]

    def test_duplicates_and_odd_records(self, store: Store) -> None:
        """Equal records pushed twice pop twice; text survives unchanged."""
        records = ["same", "same", "", "a\x00b", "☃", "'; DELETE FROM queues; --"]
        for record in records:
            store.push("q", record)
        assert store.pop("q", 100) == records

    def test_queues_are_separate_from_keys_and_streams(
        self, store: Store, clock: ManualClock
    ) -> None:
        """Records do not expire and share no names with keys or streams."""
        store.push("q", "r")
        store.set("q", "value")
        store.append("q", "entry", max_len=5)
        store.delete_prefix("")
        clock.advance(10 * 365 * 86400)
        assert store.pop("q", 5) == ["r"]
        assert store.tail("q", 5) == ["entry"]

    def test_rejects_negative_limit(self, store: Store) -> None:
        """A negative limit is a programming error and pops nothing."""
        store.push("q", "r")
        with pytest.raises(ValueError, match="limit"):
            store.pop("q", -1)
        assert store.pop("q", 5) == ["r"]

    def test_threads_pop_each_record_once(self, store: Store) -> None:
        """Eight threads draining one queue get every record exactly once, each in order."""
        records = [f"r{index:04d}" for index in range(800)]
        for record in records:
            store.push("q", record)
        got: dict[int, list[str]] = {}

        def work(index: int) -> None:
            mine: list[str] = []
            for _ in range(len(records)):
                batch = store.pop("q", 1 + index % 4)
                if not batch:
                    break
                mine.extend(batch)
            got[index] = mine

        _in_threads(8, work)
        popped = [record for mine in got.values() for record in mine]
        assert sorted(popped) == records
        assert all(mine == sorted(mine) for mine in got.values())


class TestClose:
    @pytest.mark.parametrize(
        "use",
        [
            lambda s: s.incr("k"),
            lambda s: s.get_many(["k"]),
            lambda s: s.push("q", "r"),
            lambda s: s.pop("q", 1),
        ],
        ids=["incr", "get_many", "push", "pop"],
    )
    def test_closed_store_refuses(self, store: Store, use: Callable[[Store], Any]) -> None:
        """Every counter and queue operation on a closed store raises StoreError."""
        store.close()
        with pytest.raises(StoreError, match="closed"):
            use(store)


# --- property: both backends behave like a plain-Python model ----------------------------

_CANONICAL = re.compile(r"-?[1-9][0-9]*|0")

_keys = st.sampled_from(["a", "b", "c\x00", "é"])
_values = st.sampled_from(
    ["0", "7", "-3", str(INT64_MAX), str(INT64_MAX - 1), str(INT64_MIN), *NOT_COUNTERS]
)
_amounts = st.sampled_from([0, 1, 2, -1, -5, INT64_MAX, INT64_MIN])
_ttl = st.none() | st.sampled_from([0.0, 0.5, 1.0, 2.5])

_operations = st.lists(
    st.one_of(
        st.tuples(st.just("incr"), _keys, _amounts, _ttl),
        st.tuples(st.just("set"), _keys, _values, _ttl),
        st.tuples(st.just("get_many"), st.lists(_keys, max_size=5)),
        st.tuples(st.just("advance"), st.sampled_from([0.0, 0.5, 1.0, 3.0])),
        st.tuples(st.just("push"), st.sampled_from("xy"), st.text(max_size=2)),
        st.tuples(st.just("pop"), st.sampled_from("xy"), st.integers(0, 4)),
    ),
    max_size=50,
)


class RefusedError(Exception):
    """What the model says where a backend must raise ValueError."""


class Model:
    """Counters as a dict of (text, expiry) and queues as deques: the contract, plainly."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.values: dict[str, tuple[str, float | None]] = {}
        self.queues: dict[str, deque[str]] = {}

    def _live(self, key: str) -> str | None:
        value, expires_at = self.values.get(key, (None, None))
        if expires_at is not None and expires_at <= self.clock.timestamp():
            return None
        return value

    def set(self, key: str, value: str, ttl: float | None) -> None:
        now = self.clock.timestamp()
        self.values[key] = (value, None if ttl is None else now + ttl)

    def incr(self, key: str, amount: int, ttl: float | None) -> int:
        current = self._live(key)
        if current is None:
            self.set(key, str(amount), ttl)
            return amount
        if not _CANONICAL.fullmatch(current):
            raise RefusedError
        total = int(current) + amount
        if not INT64_MIN <= int(current) <= INT64_MAX or not INT64_MIN <= total <= INT64_MAX:
            raise RefusedError
        self.values[key] = (str(total), self.values[key][1])
        return total

    def get_many(self, keys: list[str]) -> dict[str, str]:
        return {key: value for key in keys if (value := self._live(key)) is not None}

    def push(self, name: str, record: str) -> None:
        self.queues.setdefault(name, deque()).append(record)

    def pop(self, name: str, limit: int) -> list[str]:
        records = self.queues.get(name, deque())
        return [records.popleft() for _ in range(min(limit, len(records)))]


def _outcome(call: Callable[[], object]) -> object:
    try:
        return call()
    except (ValueError, RefusedError):
        return RefusedError


class TestAgainstModel:
    @settings(max_examples=150, deadline=None)
    @given(operations=_operations)
    def test_backends_match_the_model(
        self, shared_sqlite: SharedSQLite, operations: list[tuple[Any, ...]]
    ) -> None:
        """Any sequence of incr, set, get_many, push and pop answers alike everywhere.

        Refusals count as answers: where the model refuses an incr, both backends raise
        ValueError and leave the value as it was.
        """
        clock, sqlite = shared_sqlite.clock, shared_sqlite.store
        sqlite.delete_prefix("")
        run = next(shared_sqlite.runs)
        memory = MemoryStore(clock)
        model = Model(clock)
        try:
            for step, (name, *args) in enumerate(operations):
                if name == "advance":
                    clock.advance(args[0])
                    continue
                if name in {"push", "pop"}:
                    args[0] = f"run {run}: {args[0]}"
                expected = _outcome(lambda: getattr(model, name)(*args))  # noqa: B023
                for backend in (memory, sqlite):
                    got = _outcome(lambda: getattr(backend, name)(*args))  # noqa: B023
                    assert got == expected, (step, name, args, type(backend).__name__)
            every_key = ["a", "b", "c\x00", "é"]
            for backend in (memory, sqlite):
                assert backend.get_many(every_key) == model.get_many(every_key)
        finally:
            memory.close()
