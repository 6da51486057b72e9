"""A closed breaker reuses its last reading of the store for ``state_refresh``: two
"processes" (each its own Supervisor and SQLiteStore on one file, one ManualClock) show
that another process's opening is noticed only once the reading is that old, that a local
failure drops the reading and is counted at once, that ``state_refresh=0`` reads the store
on every call, and that breakers on the same store object see each other's failures at
once."""

from __future__ import annotations

import asyncio
import functools
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaperone._clock import ManualClock
from chaperone._event_codec import decode_event
from chaperone._events import CircuitBreakerOpened, Event
from chaperone._exceptions import CircuitOpenError
from chaperone.breakers import CircuitBreaker, CircuitState, circuit_breaker
from chaperone.breakers import _breaker as breaker_module
from chaperone.store import SQLiteStore, Store
from chaperone.supervision import Supervisor, _keys

START = datetime(2024, 1, 15, 10, 0, tzinfo=UTC)
THRESHOLD = 2
RESET_TIMEOUT = 60.0
REFRESH = 5.0
TICK = 1 / 64
"""Durations in the property are whole ticks: exact in floats and in microseconds."""


class ServiceDownError(ConnectionError):
    """The failure the guarded service raises in these tests."""


def fail() -> None:
    raise ServiceDownError("service down")


@attrs.define
class Service:
    """Counts the calls that reached it, to tell a call let through from one refused."""

    calls: int = 0

    def succeed(self) -> str:
        self.calls += 1
        return "ok"

    async def asucceed(self) -> str:
        self.calls += 1
        return "ok"


class RecordingStore:
    """A store that notes every operation before passing it on, and can run a hook right
    after a read (to make something happen while a breaker reads)."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.url = inner.url
        self.operations: list[str] = []
        self.after_read: Callable[[], None] | None = None

    def __getattr__(self, name: str) -> Any:
        operation = getattr(self.inner, name)
        if not callable(operation):
            return operation

        @functools.wraps(operation)
        def recorded(*args: Any, **kwargs: Any) -> Any:
            self.operations.append(name)
            result = operation(*args, **kwargs)
            if name == "get_many" and self.after_read is not None:
                hook, self.after_read = self.after_read, None
                hook()
            return result

        return recorded


@attrs.define
class Processes:
    """Two processes' worth of store and supervisor on one SQLite file, one clock."""

    directory: Path
    clock: ManualClock
    stores: list[SQLiteStore] = attrs.field(factory=list)

    def supervisor(self) -> Supervisor:
        """A new process: its own store object on the shared file, and a supervisor."""
        path = self.directory / "breakers.sqlite3"
        store = SQLiteStore(path, self.clock, f"sqlite:///{path}")
        self.stores.append(store)
        return Supervisor(store, self.clock)

    def breaker(self, supervisor: Supervisor | None = None, **options: Any) -> CircuitBreaker:
        """A breaker of "payments" (threshold 2, reset 60 s, refresh 5 s unless said
        otherwise) in a new process, or on ``supervisor``."""
        options.setdefault("failure_threshold", THRESHOLD)
        options.setdefault("reset_timeout", RESET_TIMEOUT)
        options.setdefault("state_refresh", REFRESH)
        return circuit_breaker("payments", supervisor=supervisor or self.supervisor(), **options)

    def queued(self) -> list[Event]:
        """Take every event the breakers queued for the monitor."""
        return [decode_event(text) for text in self.stores[0].pop(_keys.EVENTS_QUEUE, 100)]

    def close(self) -> None:
        for store in self.stores:
            store.close()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    opened = Processes(tmp_path, ManualClock(START))
    yield opened
    opened.close()


def fail_times(breaker: CircuitBreaker, times: int) -> None:
    """Make ``times`` failing calls through ``breaker``."""
    for _ in range(times):
        with pytest.raises(ServiceDownError):
            breaker.call(fail)


def opened_at(events: list[Event]) -> list[datetime]:
    """When each queued opening happened."""
    return [event.opened_at for event in events if isinstance(event, CircuitBreakerOpened)]


class TestAnotherProcessOpens:
    def test_noticed_once_the_reading_is_state_refresh_old(self, processes: Processes) -> None:
        """B keeps calling through for state_refresh after A opened the breaker, then fails
        fast with the opening's retry time, without running the call."""
        a, b = processes.breaker(), processes.breaker()
        service = Service()
        assert b.call(service.succeed) == "ok"  # B reads "closed" at START
        fail_times(a, THRESHOLD)
        assert a.state is CircuitState.OPEN
        processes.clock.advance(REFRESH - TICK)
        assert b.call(service.succeed) == "ok"
        assert service.calls == 2
        processes.clock.advance(TICK)
        with pytest.raises(CircuitOpenError) as caught:
            b.call(service.succeed)
        assert service.calls == 2
        assert caught.value.retry_at == START + timedelta(seconds=RESET_TIMEOUT)
        assert opened_at(processes.queued()) == [START]

    def test_the_reading_starts_when_it_was_taken(self, processes: Processes) -> None:
        """The refresh counts from B's store read, not from A's opening: a reading taken
        just before the opening runs out on time."""
        a, b = processes.breaker(), processes.breaker()
        service = Service()
        b.call(service.succeed)
        processes.clock.advance(REFRESH - 1)
        fail_times(a, THRESHOLD)
        assert b.call(service.succeed) == "ok"
        processes.clock.advance(1)
        with pytest.raises(CircuitOpenError):
            b.call(service.succeed)

    def test_async_calls_and_blocks_use_the_reading_too(self, processes: Processes) -> None:
        """``acall``, the async decorator and ``async with`` reuse the reading like
        ``call``, and notice the opening once it is state_refresh old."""
        a, b = processes.breaker(), processes.breaker()
        service = Service()
        guarded = b(service.asucceed)

        async def calls() -> list[str]:
            results = [await b.acall(service.asucceed), await guarded()]
            async with b:
                results.append(await service.asucceed())
            return results

        async def refused() -> int:
            count = 0
            for attempt in (lambda: b.acall(service.asucceed), guarded):
                with pytest.raises(CircuitOpenError):
                    await attempt()
                count += 1
            with pytest.raises(CircuitOpenError):
                async with b:
                    await service.asucceed()
            return count + 1

        assert asyncio.run(calls()) == ["ok"] * 3
        fail_times(a, THRESHOLD)
        assert asyncio.run(calls()) == ["ok"] * 3
        processes.clock.advance(REFRESH)
        assert asyncio.run(refused()) == 3
        assert service.calls == 6

    def test_zero_refresh_reads_the_store_on_every_call(self, processes: Processes) -> None:
        """With state_refresh=0, B reads the store before every call and sees A's opening
        at once."""
        a, b = processes.breaker(), processes.breaker(state_refresh=0)
        service = Service()
        for _ in range(3):
            b.call(service.succeed)
        fail_times(a, THRESHOLD)
        with pytest.raises(CircuitOpenError):
            b.call(service.succeed)
        assert service.calls == 3

    def test_an_open_reading_is_never_reused(self, processes: Processes) -> None:
        """Only "closed" is reused: a B that was refused asks the store again on its next
        call, so a reset by A lets B through at once."""
        a, b = processes.breaker(), processes.breaker()
        service = Service()
        fail_times(a, THRESHOLD)
        with pytest.raises(CircuitOpenError):
            b.call(service.succeed)
        assert a.reset()
        assert b.call(service.succeed) == "ok"
        assert service.calls == 1


class TestLocalFailures:
    def test_a_failure_is_counted_at_once_and_opens(self, processes: Processes) -> None:
        """B's failure on a fresh "closed" reading still goes to the store: with A's one
        failure it reaches the threshold and opens, and B fails fast at once."""
        a, b = processes.breaker(), processes.breaker()
        service = Service()
        b.call(service.succeed)
        fail_times(a, 1)
        fail_times(b, 1)
        assert a.state is CircuitState.OPEN
        assert opened_at(processes.queued()) == [START]
        with pytest.raises(CircuitOpenError):
            b.call(service.succeed)
        assert service.calls == 1

    def test_a_failure_drops_a_stale_reading(self, processes: Processes) -> None:
        """When A opened behind B's reading, B's next failure drops the reading: its
        following call fails fast without waiting out state_refresh, and no second opening
        is reported."""
        a, b = processes.breaker(), processes.breaker()
        service = Service()
        b.call(service.succeed)
        fail_times(a, THRESHOLD)
        assert b.call(service.succeed) == "ok"
        fail_times(b, 1)
        with pytest.raises(CircuitOpenError):
            b.call(service.succeed)
        assert service.calls == 2
        assert opened_at(processes.queued()) == [START]

    def test_a_reading_with_failures_counted_is_not_reused(self, processes: Processes) -> None:
        """While failures are counted B reads the store on each call, so each success of
        B resets A's count and A's lone failures never add up to the threshold."""
        a, b = processes.breaker(), processes.breaker()
        service = Service()
        for _ in range(3):
            fail_times(a, 1)
            assert b.call(service.succeed) == "ok"
        assert a.state is CircuitState.CLOSED
        assert processes.queued() == []

    def test_exceptions_that_do_not_count_keep_the_reading(self, processes: Processes) -> None:
        """An excluded exception is no failure: B keeps its reading and calls through."""
        a = processes.breaker()
        b = processes.breaker(exclude=KeyError)
        service = Service()
        b.call(service.succeed)
        fail_times(a, THRESHOLD)

        def missing() -> None:
            raise KeyError("order")

        with pytest.raises(KeyError):
            b.call(missing)
        assert b.call(service.succeed) == "ok"

    def test_breakers_on_one_store_object_see_failures_at_once(self, processes: Processes) -> None:
        """Breakers of a service on the same store object (one process) drop each other's
        readings on a failure: no staleness within a process."""
        supervisor = processes.supervisor()
        a = processes.breaker(supervisor)
        b = processes.breaker(Supervisor(supervisor.store, processes.clock))
        other_service = circuit_breaker("refunds", state_refresh=REFRESH, supervisor=supervisor)
        service = Service()
        b.call(service.succeed)
        other_service.call(service.succeed)
        fail_times(a, THRESHOLD)
        with pytest.raises(CircuitOpenError):
            b.call(service.succeed)
        assert other_service.call(service.succeed) == "ok"

    def test_a_failure_during_a_read_is_not_cached_over(self, tmp_path: Path) -> None:
        """A reading of "closed" taken while a failure in the process opens the breaker is
        not kept: the next call reads again and fails fast."""
        clock = ManualClock(START)
        path = tmp_path / "breakers.sqlite3"
        store = RecordingStore(SQLiteStore(path, clock, f"sqlite:///{path}"))
        try:
            b = circuit_breaker(
                "payments",
                state_refresh=REFRESH,
                supervisor=Supervisor(store, clock),
            )
            a = circuit_breaker(
                "payments",
                failure_threshold=1,
                supervisor=Supervisor(store, clock),
            )
            store.after_read = lambda: fail_times(a, 1)
            service = Service()
            assert b.call(service.succeed) == "ok"  # admitted on its read: closed
            assert a.state is CircuitState.OPEN
            with pytest.raises(CircuitOpenError):
                b.call(service.succeed)
            assert service.calls == 1
        finally:
            store.inner.close()


class TestStoreTraffic:
    def test_successes_on_a_fresh_reading_touch_no_store(self, tmp_path: Path) -> None:
        """One read per state_refresh, and no write, while a healthy service answers."""
        clock = ManualClock(START)
        path = tmp_path / "breakers.sqlite3"
        store = RecordingStore(SQLiteStore(path, clock, f"sqlite:///{path}"))
        try:
            breaker = circuit_breaker(
                "payments",
                state_refresh="250ms",
                supervisor=Supervisor(store, clock),
            )
            service = Service()
            for _ in range(10):
                breaker.call(service.succeed)
                with breaker:
                    service.succeed()
            assert store.operations == ["get_many"]
            clock.advance(0.25)
            for _ in range(10):
                breaker.call(service.succeed)
            assert store.operations == ["get_many"] * 2
            assert service.calls == 30
        finally:
            store.inner.close()

    def test_the_failure_rate_mode_still_counts_every_call(self, tmp_path: Path) -> None:
        """In the failure-rate mode the reading saves the read, but each success is still
        counted in its bucket."""
        clock = ManualClock(START)
        path = tmp_path / "breakers.sqlite3"
        store = RecordingStore(SQLiteStore(path, clock, f"sqlite:///{path}"))
        try:
            breaker = circuit_breaker(
                "payments",
                failure_rate=50,
                supervisor=Supervisor(store, clock),
            )
            service = Service()
            for _ in range(3):
                breaker.call(service.succeed)
            assert store.operations == ["get_many", "incr", "incr", "incr"]
        finally:
            store.inner.close()

    def test_without_a_store_every_call_looks_for_one(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An unconfigured breaker keeps calling through unguarded, asking for the default
        store on every call as before (nothing is cached)."""
        lookups: list[int] = []

        def broken() -> Supervisor:
            lookups.append(1)
            raise OSError("cannot open the store")

        monkeypatch.setattr(breaker_module, "default_supervisor", broken)
        breaker = circuit_breaker("payments", failure_threshold=1)
        service = Service()
        for _ in range(3):
            assert breaker.call(service.succeed) == "ok"
        assert (len(lookups), service.calls) == (3, 3)


class TestOption:
    @pytest.mark.parametrize(
        ("value", "seconds"),
        [
            (0, 0.0),
            (2, 2.0),
            (0.5, 0.5),
            ("250ms", 0.25),
            ("1m", 60.0),
            (timedelta(seconds=3), 3.0),
        ],
    )
    def test_takes_any_duration(self, value: Any, seconds: float) -> None:
        """state_refresh takes seconds, text or a timedelta; 0 is allowed."""
        assert circuit_breaker("payments", state_refresh=value).state_refresh == seconds

    def test_defaults_to_one_second(self) -> None:
        """Without state_refresh a breaker reuses a reading for one second."""
        assert circuit_breaker("payments").state_refresh == 1.0

    @pytest.mark.parametrize("value", [-1, "soon", float("nan"), True])
    def test_bad_values_name_the_option(self, value: Any) -> None:
        """A negative or unreadable state_refresh is a ValueError naming it."""
        with pytest.raises(ValueError, match="state_refresh"):
            circuit_breaker("payments", state_refresh=value)


class TestProperty:
    @given(
        refresh=st.integers(0, 640).map(lambda ticks: ticks * TICK),
        later=st.integers(0, 1280).map(lambda ticks: ticks * TICK),
    )
    def test_b_notices_the_opening_iff_the_reading_is_refresh_old(
        self, refresh: float, later: float
    ) -> None:
        """For any state_refresh r and delay t after B's reading (A opening meanwhile), B's
        next call is refused exactly when t >= r, and otherwise runs."""
        with tempfile.TemporaryDirectory() as directory:
            processes = Processes(Path(directory), ManualClock(START))
            try:
                a = processes.breaker()
                b = processes.breaker(state_refresh=refresh)
                service = Service()
                b.call(service.succeed)
                fail_times(a, THRESHOLD)
                processes.clock.advance(later)
                try:
                    b.call(service.succeed)
                except CircuitOpenError:
                    noticed = True
                else:
                    noticed = False
                assert noticed == (later >= refresh)
                assert service.calls == (1 if noticed else 2)
            finally:
                processes.close()
