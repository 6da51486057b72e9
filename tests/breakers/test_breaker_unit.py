"""Circuit breakers, one behaviour at a time: the state machine on a ManualClock, the four
ways to guard a call, which exceptions count, the fail-fast error, the failure-rate mode,
and calls that go on when the store is away."""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import pickle
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from chaperone._clock import ManualClock
from chaperone._event_codec import decode_event
from chaperone._events import CircuitBreakerClosed, CircuitBreakerOpened, Event
from chaperone._exceptions import ChaperoneError, CircuitOpenError
from chaperone.breakers import CircuitBreaker, CircuitState, circuit_breaker
from chaperone.breakers import _breaker as breaker_module
from chaperone.store import MemoryStore, SQLiteStore, Store
from chaperone.supervision import Supervisor, _keys

START = datetime(2024, 1, 15, 10, 0, tzinfo=UTC)


class ServiceDownError(ConnectionError):
    """The failure the guarded service raises in these tests."""


class Interrupted(BaseException):
    """Stands for cancellation: not an Exception, so it neither fails nor succeeds."""


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, clock: ManualClock, tmp_path: Path) -> Iterator[Store]:
    if request.param == "memory":
        opened: Store = MemoryStore(clock)
    else:
        path = tmp_path / "breakers.sqlite3"
        opened = SQLiteStore(path, clock, f"sqlite:///{path}")
    yield opened
    opened.close()


@pytest.fixture
def supervisor(store: Store, clock: ManualClock) -> Supervisor:
    return Supervisor(store, clock)


def queued(store: Store) -> list[Event]:
    """Take every event the breakers queued for the monitor."""
    return [decode_event(text) for text in store.pop(_keys.EVENTS_QUEUE, 1000)]


def fail() -> None:
    raise ServiceDownError("service down")


def succeed() -> str:
    return "ok"


def fail_times(breaker: CircuitBreaker, times: int) -> None:
    """Make ``times`` failing calls through ``breaker``."""
    for _ in range(times):
        with pytest.raises(ServiceDownError):
            breaker.call(fail)


def open_breaker(
    supervisor: Supervisor, service: str = "payments", **options: Any
) -> CircuitBreaker:
    """A breaker (threshold 3 unless said otherwise) that has just opened; queue emptied."""
    options.setdefault("failure_threshold", 3)
    breaker = circuit_breaker(service, supervisor=supervisor, **options)
    fail_times(breaker, options["failure_threshold"])
    assert breaker.state is CircuitState.OPEN
    queued(supervisor.store)
    return breaker


class RecordingStore:
    """A store that notes every operation before passing it on, and can be made to fail."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.url = inner.url
        self.operations: list[str] = []
        self.failing: set[str] | None = None
        """Operations that raise; None: none, empty set: every one."""

    def __getattr__(self, name: str) -> Any:
        operation = getattr(self.inner, name)
        if not callable(operation):
            return operation

        @functools.wraps(operation)
        def recorded(*args: Any, **kwargs: Any) -> Any:
            self.operations.append(name)
            if self.failing is not None and (not self.failing or name in self.failing):
                raise OSError(f"store unavailable ({name})")
            return operation(*args, **kwargs)

        return recorded


class TestClosed:
    def test_a_success_passes_the_result_through(self, supervisor: Supervisor) -> None:
        """A call through a closed breaker returns what the function returned."""
        breaker = circuit_breaker("payments", supervisor=supervisor)
        assert breaker.call(lambda x: x * 2, 21) == 42
        assert breaker.state is CircuitState.CLOSED
        assert queued(supervisor.store) == []

    def test_failures_below_the_threshold_keep_it_closed(self, supervisor: Supervisor) -> None:
        """Four of five failures re-raise the very exception and leave the breaker closed."""
        breaker = circuit_breaker("payments", supervisor=supervisor)
        error = ServiceDownError("down")

        def raise_it() -> None:
            raise error

        for _ in range(4):
            with pytest.raises(ServiceDownError) as caught:
                breaker.call(raise_it)
            assert caught.value is error
        assert breaker.state is CircuitState.CLOSED
        assert queued(supervisor.store) == []

    def test_the_threshold_opens_it_and_reports_once(
        self, supervisor: Supervisor, clock: ManualClock
    ) -> None:
        """The fifth consecutive failure opens the breaker: one CircuitBreakerOpened with the
        count, the opening time and the next trial time."""
        breaker = circuit_breaker("payments", reset_timeout="2m", supervisor=supervisor)
        fail_times(breaker, 5)
        assert breaker.state is CircuitState.OPEN
        assert queued(supervisor.store) == [
            CircuitBreakerOpened(
                service="payments",
                failure_count=5,
                opened_at=START,
                retry_at=START + timedelta(minutes=2),
                occurred_at=START,
            )
        ]

    def test_a_success_resets_the_consecutive_count(self, supervisor: Supervisor) -> None:
        """Failures interrupted by a success do not add up to the threshold."""
        breaker = circuit_breaker("payments", failure_threshold=3, supervisor=supervisor)
        fail_times(breaker, 2)
        breaker.call(succeed)
        fail_times(breaker, 2)
        assert breaker.state is CircuitState.CLOSED

    def test_a_success_costs_one_read_and_no_write(self, store: Store, clock: ManualClock) -> None:
        """A success while closed with no failures counted reads the store once (with
        state_refresh=0) and writes nothing; after a failure, the next success writes once
        (the reset)."""
        recording = RecordingStore(store)
        breaker = circuit_breaker(
            "payments",
            state_refresh=0,
            supervisor=Supervisor(recording, clock),  # type: ignore[arg-type]
        )
        for _ in range(3):
            breaker.call(succeed)
        assert recording.operations == ["get_many"] * 3
        recording.operations.clear()
        fail_times(breaker, 1)
        breaker.call(succeed)
        breaker.call(succeed)
        assert recording.operations == ["get_many", "incr", "get_many", "delete", "get_many"]

    def test_breakers_of_other_services_are_independent(self, supervisor: Supervisor) -> None:
        """Opening one service's breaker leaves another's closed, however alike the names."""
        open_breaker(supervisor, "a:b")
        for name in ("a", "a:", "b", "a%3Ab"):
            assert circuit_breaker(name, supervisor=supervisor).state is CircuitState.CLOSED


class TestOpen:
    def test_calls_fail_fast_without_running(
        self, supervisor: Supervisor, clock: ManualClock
    ) -> None:
        """While open, a call raises CircuitOpenError and the function is not called."""
        breaker = open_breaker(supervisor, reset_timeout=60)
        calls: list[int] = []
        clock.advance(59)
        with pytest.raises(CircuitOpenError) as caught:
            breaker.call(calls.append, 1)
        assert calls == []
        assert caught.value.service == "payments"
        assert caught.value.retry_at == START + timedelta(seconds=60)
        assert queued(supervisor.store) == []

    def test_the_error_names_the_service_and_the_retry_time(self, supervisor: Supervisor) -> None:
        """The message says which breaker is open and when trial calls resume."""
        breaker = open_breaker(supervisor, reset_timeout="90s")
        with pytest.raises(CircuitOpenError, match=r"'payments'.*2024-01-15 10:01:30 UTC"):
            breaker.call(succeed)

    def test_the_reset_timeout_makes_it_half_open(
        self, supervisor: Supervisor, clock: ManualClock
    ) -> None:
        """Just before the reset timeout the breaker is open; at it, half-open."""
        breaker = open_breaker(supervisor, reset_timeout=timedelta(minutes=1))
        clock.advance(timedelta(seconds=59, microseconds=999_999))
        assert breaker.state is CircuitState.OPEN
        clock.advance(timedelta(microseconds=1))
        assert breaker.state is CircuitState.HALF_OPEN

    def test_more_failing_processes_do_not_report_again(
        self, store: Store, clock: ManualClock
    ) -> None:
        """Several breaker objects on one store (as in several processes) that all pass the
        threshold report the opening once."""
        breakers = [
            circuit_breaker("payments", failure_threshold=2, supervisor=Supervisor(store, clock))
            for _ in range(3)
        ]
        with pytest.raises(ServiceDownError), breakers[0], breakers[1], breakers[2]:
            fail()  # admitted by all three while closed; all three count the failure
        for breaker in breakers:
            with pytest.raises(CircuitOpenError):
                breaker.call(fail)
        events = queued(store)
        assert [type(event) for event in events] == [CircuitBreakerOpened]


class TestHalfOpen:
    def test_a_successful_trial_closes_it(self, supervisor: Supervisor, clock: ManualClock) -> None:
        """With the default success threshold one successful trial closes the breaker and
        reports CircuitBreakerClosed."""
        breaker = open_breaker(supervisor, reset_timeout=60)
        clock.advance(60)
        assert breaker.call(succeed) == "ok"
        assert breaker.state is CircuitState.CLOSED
        closed_at = START + timedelta(seconds=60)
        assert queued(supervisor.store) == [
            CircuitBreakerClosed(service="payments", closed_at=closed_at, occurred_at=closed_at)
        ]

    def test_the_success_threshold_needs_that_many_trials(
        self, supervisor: Supervisor, clock: ManualClock
    ) -> None:
        """With success_threshold=3, two successful trials leave it half-open; the third
        closes it."""
        breaker = open_breaker(supervisor, reset_timeout=60, success_threshold=3)
        clock.advance(61)
        for _ in range(2):
            breaker.call(succeed)
            assert breaker.state is CircuitState.HALF_OPEN
        breaker.call(succeed)
        assert breaker.state is CircuitState.CLOSED
        assert [type(event) for event in queued(supervisor.store)] == [CircuitBreakerClosed]

    def test_a_failed_trial_reopens_without_a_new_report(
        self, supervisor: Supervisor, clock: ManualClock
    ) -> None:
        """A failed trial keeps the breaker open for another reset timeout from the
        failure, and reports nothing: the incident goes on."""
        breaker = open_breaker(supervisor, reset_timeout=60)
        clock.advance(75)
        fail_times(breaker, 1)
        assert breaker.state is CircuitState.OPEN
        with pytest.raises(CircuitOpenError) as caught:
            breaker.call(succeed)
        assert caught.value.retry_at == START + timedelta(seconds=135)
        clock.advance(60)
        assert breaker.state is CircuitState.HALF_OPEN
        assert queued(supervisor.store) == []

    def test_trial_successes_restart_after_a_failed_trial(
        self, supervisor: Supervisor, clock: ManualClock
    ) -> None:
        """Successful trials before a failed one do not count towards closing."""
        breaker = open_breaker(supervisor, reset_timeout=60, success_threshold=2)
        clock.advance(60)
        breaker.call(succeed)
        fail_times(breaker, 1)
        clock.advance(60)
        breaker.call(succeed)
        assert breaker.state is CircuitState.HALF_OPEN
        breaker.call(succeed)
        assert breaker.state is CircuitState.CLOSED

    def test_a_late_success_from_a_superseded_trial_does_not_close(
        self, store: Store, clock: ManualClock
    ) -> None:
        """A trial that was admitted before another process's trial failed (and so began
        a new wait) does not close the breaker when it then succeeds."""
        first, second = (
            circuit_breaker(
                "payments",
                failure_threshold=1,
                reset_timeout=60,
                supervisor=Supervisor(store, clock),
            )
            for _ in range(2)
        )
        fail_times(first, 1)
        clock.advance(60)
        # first's trial is still running when second's trial fails (first leaves last)
        with first, pytest.raises(ServiceDownError), second:
            fail()
        assert first.state is CircuitState.OPEN
        assert [type(event) for event in queued(store)] == [CircuitBreakerOpened]

    def test_closing_starts_the_failure_count_afresh(
        self, supervisor: Supervisor, clock: ManualClock
    ) -> None:
        """After closing, it takes the full threshold of new failures to open again, which
        reports a new opening."""
        breaker = open_breaker(supervisor, reset_timeout=60)
        clock.advance(60)
        breaker.call(succeed)
        fail_times(breaker, 2)
        assert breaker.state is CircuitState.CLOSED
        fail_times(breaker, 1)
        assert breaker.state is CircuitState.OPEN
        assert [type(event) for event in queued(supervisor.store)] == [
            CircuitBreakerClosed,
            CircuitBreakerOpened,
        ]

    def test_reset_closes_by_hand(self, supervisor: Supervisor) -> None:
        """``reset()`` closes an open breaker (reported) and is a no-op on a closed one."""
        breaker = open_breaker(supervisor)
        assert breaker.reset()
        assert breaker.state is CircuitState.CLOSED
        assert not breaker.reset()
        assert [type(event) for event in queued(supervisor.store)] == [CircuitBreakerClosed]


class TestExceptionFiltering:
    def test_only_the_named_exceptions_count(self, supervisor: Supervisor) -> None:
        """With exceptions=ConnectionError, a ValueError is re-raised but counts as a
        success (the service answered): it breaks a run of failures."""
        breaker = circuit_breaker(
            "payments", failure_threshold=2, exceptions=ConnectionError, supervisor=supervisor
        )
        for _ in range(3):
            fail_times(breaker, 1)
            with pytest.raises(ValueError, match="bad order"):
                breaker.call(int, "bad order")
        assert breaker.state is CircuitState.CLOSED
        fail_times(breaker, 2)
        assert breaker.state is CircuitState.OPEN

    def test_excluded_exceptions_never_count(self, supervisor: Supervisor) -> None:
        """An excluded exception is re-raised and never counts, even when it is also one
        of ``exceptions``."""
        breaker = circuit_breaker(
            "payments",
            failure_threshold=1,
            exceptions=(ConnectionError, LookupError),
            exclude=(KeyError, ConnectionRefusedError),
            supervisor=supervisor,
        )
        with pytest.raises(KeyError):
            breaker.call({}.__getitem__, "missing")
        with pytest.raises(ConnectionRefusedError):
            breaker.call(functools.partial(_raise, ConnectionRefusedError()))
        assert breaker.state is CircuitState.CLOSED
        with pytest.raises(IndexError):
            breaker.call([].pop)
        assert breaker.state is CircuitState.OPEN

    def test_non_exceptions_neither_fail_nor_succeed(
        self, supervisor: Supervisor, clock: ManualClock
    ) -> None:
        """A BaseException that is not an Exception (cancellation) does not count: it
        neither breaks a run of failures nor closes a half-open breaker."""
        breaker = circuit_breaker(
            "payments", failure_threshold=2, reset_timeout=60, supervisor=supervisor
        )
        fail_times(breaker, 1)
        with pytest.raises(Interrupted):
            breaker.call(functools.partial(_raise, Interrupted()))
        fail_times(breaker, 1)
        assert breaker.state is CircuitState.OPEN
        clock.advance(60)
        with pytest.raises(Interrupted):
            breaker.call(functools.partial(_raise, Interrupted()))
        assert breaker.state is CircuitState.HALF_OPEN

    def test_circuit_open_error_is_raised_without_the_call(self, supervisor: Supervisor) -> None:
        """An open breaker refuses even a call that would succeed, and that refusal is not
        counted as anything (the breaker stays open with no new report)."""
        breaker = open_breaker(supervisor)
        for _ in range(5):
            with pytest.raises(CircuitOpenError):
                breaker.call(succeed)
        assert breaker.state is CircuitState.OPEN
        assert queued(supervisor.store) == []

    @pytest.mark.parametrize("bad", [ValueError("x"), int, (ConnectionError, "x"), object])
    def test_exception_options_take_exception_classes(
        self, supervisor: Supervisor, bad: Any
    ) -> None:
        """Anything but an exception class (or a tuple of them) is a TypeError."""
        with pytest.raises(TypeError, match="exception classes"):
            circuit_breaker("payments", exceptions=bad, supervisor=supervisor)
        with pytest.raises(TypeError, match="exception classes"):
            circuit_breaker("payments", exclude=bad, supervisor=supervisor)


def _raise(error: BaseException) -> None:
    raise error


class TestForms:
    def test_decorator_keeps_the_function_and_its_result(self, supervisor: Supervisor) -> None:
        """A decorated function keeps its name and docstring and returns its result."""
        breaker = circuit_breaker("payments", supervisor=supervisor)

        @breaker
        def charge(amount: int) -> str:
            """Charge an amount."""
            return f"charged {amount}"

        assert charge(5) == "charged 5"
        assert charge.__name__ == "charge"
        assert charge.__doc__ == "Charge an amount."

    def test_decorator_counts_failures_and_fails_fast(self, supervisor: Supervisor) -> None:
        """A decorated function's failures open the breaker; then calls fail fast."""
        calls: list[int] = []

        @circuit_breaker("payments", failure_threshold=2, supervisor=supervisor)
        def charge(amount: int) -> None:
            calls.append(amount)
            raise ServiceDownError("declined")

        for amount in (1, 2):
            with pytest.raises(ServiceDownError):
                charge(amount)
        with pytest.raises(CircuitOpenError):
            charge(3)
        assert calls == [1, 2]

    def test_async_decorator(self, supervisor: Supervisor, clock: ManualClock) -> None:
        """A decorated coroutine function stays one; its failures open the breaker, its
        trial success closes it."""
        outcomes = iter([ServiceDownError("1"), ServiceDownError("2"), None])

        @circuit_breaker("payments", failure_threshold=2, reset_timeout=30, supervisor=supervisor)
        async def charge() -> str:
            await asyncio.sleep(0)
            error = next(outcomes)
            if error is not None:
                raise error
            return "charged"

        assert inspect.iscoroutinefunction(charge)

        async def scenario() -> str:
            for _ in range(2):
                with pytest.raises(ServiceDownError):
                    await charge()
            with pytest.raises(CircuitOpenError):
                await charge()
            clock.advance(30)
            return await charge()

        assert asyncio.run(scenario()) == "charged"
        assert [type(event) for event in queued(supervisor.store)] == [
            CircuitBreakerOpened,
            CircuitBreakerClosed,
        ]

    def test_context_manager(self, supervisor: Supervisor) -> None:
        """A failure inside ``with`` counts and propagates; once open, the block does not
        run."""
        breaker = circuit_breaker("payments", failure_threshold=2, supervisor=supervisor)
        for _ in range(2):
            with pytest.raises(ServiceDownError), breaker:
                fail()
        ran = False
        with pytest.raises(CircuitOpenError), breaker:
            ran = True
        assert not ran

    def test_async_context_manager(self, supervisor: Supervisor, clock: ManualClock) -> None:
        """``async with`` counts failures, fails fast when open and closes on a trial."""
        breaker = circuit_breaker(
            "payments", failure_threshold=1, reset_timeout=5, supervisor=supervisor
        )

        async def scenario() -> bool:
            with pytest.raises(ServiceDownError):
                async with breaker:
                    fail()
            ran = False
            with pytest.raises(CircuitOpenError):
                async with breaker:
                    ran = True
            clock.advance(5)
            async with breaker:
                await asyncio.sleep(0)
            return ran

        assert asyncio.run(scenario()) is False
        assert breaker.state is CircuitState.CLOSED

    def test_nested_blocks_each_count(self, supervisor: Supervisor) -> None:
        """An error leaving two nested blocks of one breaker counts twice."""
        breaker = circuit_breaker("payments", failure_threshold=2, supervisor=supervisor)
        with pytest.raises(ServiceDownError), breaker, breaker:
            fail()
        assert breaker.state is CircuitState.OPEN

    def test_concurrent_tasks_keep_their_own_admissions(
        self, store: Store, clock: ManualClock
    ) -> None:
        """Two tasks in ``async with`` of one breaker object, the first to enter leaving
        first: each outcome is recorded against its own admission, so a call admitted while
        closed that fails is not taken for a failed trial."""
        breaker = circuit_breaker(
            "payments", failure_threshold=2, reset_timeout=10, supervisor=Supervisor(store, clock)
        )
        other_process = circuit_breaker(
            "payments", failure_threshold=2, reset_timeout=10, supervisor=Supervisor(store, clock)
        )

        async def scenario() -> None:
            closed_entered = asyncio.Event()
            trial_entered = asyncio.Event()
            closed_left = asyncio.Event()

            async def closed_call() -> None:
                try:
                    async with breaker:
                        closed_entered.set()
                        await trial_entered.wait()
                        fail()
                finally:
                    closed_left.set()

            async def trial_call() -> None:
                await closed_entered.wait()
                fail_times(other_process, 2)  # meanwhile another process opens it
                clock.advance(10)
                async with breaker:  # a trial, which succeeds: it closes the breaker
                    trial_entered.set()
                    await closed_left.wait()

            outcomes = await asyncio.gather(closed_call(), trial_call(), return_exceptions=True)
            assert [type(outcome) for outcome in outcomes] == [ServiceDownError, type(None)]

        asyncio.run(scenario())
        assert breaker.state is CircuitState.CLOSED
        assert [type(event) for event in queued(store)] == [
            CircuitBreakerOpened,
            CircuitBreakerClosed,
        ]

    def test_call_and_acall(self, supervisor: Supervisor) -> None:
        """``call`` and ``acall`` pass positional and keyword arguments through."""
        breaker = circuit_breaker("payments", supervisor=supervisor)

        async def add(a: int, *, b: int) -> int:
            return a + b

        assert breaker.call(divmod, 7, 2) == (3, 1)
        assert asyncio.run(breaker.acall(add, 1, b=2)) == 3


class TestFailureRate:
    def rate_breaker(self, supervisor: Supervisor, **options: Any) -> CircuitBreaker:
        options = {"failure_rate": 50, "minimum_calls": 4, "window": 100, **options}
        return circuit_breaker("search", reset_timeout=30, supervisor=supervisor, **options)

    def test_opens_at_the_rate_with_enough_calls(self, supervisor: Supervisor) -> None:
        """Two failures in four calls is 50 %: the fourth call, a failure, opens it and
        the report counts the failures in the window."""
        breaker = self.rate_breaker(supervisor)
        breaker.call(succeed)
        breaker.call(succeed)
        fail_times(breaker, 1)
        assert breaker.state is CircuitState.CLOSED
        fail_times(breaker, 1)
        assert breaker.state is CircuitState.OPEN
        events = queued(supervisor.store)
        assert len(events) == 1
        assert isinstance(events[0], CircuitBreakerOpened)
        assert events[0].failure_count == 2

    def test_too_few_calls_never_open(self, supervisor: Supervisor) -> None:
        """Below ``minimum_calls`` even all failures keep it closed; no consecutive-count
        rule applies unless failure_threshold is given."""
        breaker = self.rate_breaker(supervisor, minimum_calls=10)
        fail_times(breaker, 9)
        assert breaker.state is CircuitState.CLOSED
        fail_times(breaker, 1)
        assert breaker.state is CircuitState.OPEN

    def test_below_the_rate_stays_closed(self, supervisor: Supervisor) -> None:
        """One failure in four calls (25 %) is under a 50 % rate."""
        breaker = self.rate_breaker(supervisor)
        for _ in range(3):
            breaker.call(succeed)
        fail_times(breaker, 1)
        assert breaker.state is CircuitState.CLOSED

    def test_calls_leave_the_sliding_window(
        self, supervisor: Supervisor, clock: ManualClock
    ) -> None:
        """Failures older than the window no longer count."""
        breaker = self.rate_breaker(supervisor)
        fail_times(breaker, 3)
        clock.advance(100)
        for _ in range(3):
            breaker.call(succeed)
        fail_times(breaker, 1)
        assert breaker.state is CircuitState.CLOSED

    def test_both_rules_when_both_are_given(self, supervisor: Supervisor) -> None:
        """With failure_threshold as well, consecutive failures open it below
        ``minimum_calls``."""
        breaker = self.rate_breaker(supervisor, minimum_calls=100, failure_threshold=3)
        fail_times(breaker, 3)
        assert breaker.state is CircuitState.OPEN

    def test_closing_forgets_the_window(self, supervisor: Supervisor, clock: ManualClock) -> None:
        """The failures that opened the breaker do not reopen it right after it closed."""
        breaker = self.rate_breaker(supervisor, window="10m")
        fail_times(breaker, 4)
        clock.advance(30)
        breaker.call(succeed)
        assert breaker.state is CircuitState.CLOSED
        fail_times(breaker, 2)
        assert breaker.state is CircuitState.CLOSED


class TestOptions:
    @pytest.mark.parametrize("duration", [90, 90.0, "90s", "1m30s", timedelta(seconds=90)])
    def test_durations_in_any_form(self, supervisor: Supervisor, duration: Any) -> None:
        """Reset timeout and window take seconds, text or a timedelta."""
        breaker = circuit_breaker(
            "x", reset_timeout=duration, failure_rate=10, window=duration, supervisor=supervisor
        )
        assert breaker.policy.reset_timeout == 90
        assert breaker.policy.window == 90

    def test_defaults(self, supervisor: Supervisor) -> None:
        """Five failures, a minute, one trial; no failure-rate rule."""
        policy = circuit_breaker("x", supervisor=supervisor).policy
        assert (policy.failure_threshold, policy.reset_timeout, policy.success_threshold) == (
            5,
            60,
            1,
        )
        assert policy.failure_rate is None
        assert (
            circuit_breaker("x", failure_rate=5, supervisor=supervisor).policy.failure_threshold
            is None
        )

    @pytest.mark.parametrize(
        ("options", "named"),
        [
            ({"reset_timeout": 0}, "reset_timeout"),
            ({"reset_timeout": "soon"}, "reset_timeout"),
            ({"reset_timeout": -1}, "reset_timeout"),
            ({"failure_threshold": 0}, "failure_threshold"),
            ({"failure_threshold": True}, "failure_threshold"),
            ({"failure_threshold": 2.5}, "failure_threshold"),
            ({"success_threshold": 0}, "success_threshold"),
            ({"failure_rate": 0}, "failure_rate"),
            ({"failure_rate": 100.5}, "failure_rate"),
            ({"failure_rate": 50, "minimum_calls": 0}, "minimum_calls"),
            ({"failure_rate": 50, "window": "0s"}, "window"),
        ],
    )
    def test_bad_options_name_themselves(
        self, supervisor: Supervisor, options: dict[str, Any], named: str
    ) -> None:
        """A malformed option is a ValueError naming it."""
        with pytest.raises(ValueError, match=named):
            circuit_breaker("x", supervisor=supervisor, **options)

    @pytest.mark.parametrize("service", ["", None, 3])
    def test_a_service_name_is_required(self, supervisor: Supervisor, service: Any) -> None:
        """The service must be a non-empty string."""
        with pytest.raises(ValueError, match="service"):
            circuit_breaker(service, supervisor=supervisor)


class TestCircuitOpenError:
    def test_is_a_chaperone_error_with_its_facts(self) -> None:
        """The error is a ChaperoneError carrying the service and the UTC retry time."""
        retry_at = datetime(2024, 1, 15, 11, 30, 5, tzinfo=UTC)
        error = CircuitOpenError("payment-gateway", retry_at)
        assert isinstance(error, ChaperoneError)
        assert error.service == "payment-gateway"
        assert error.retry_at == retry_at
        assert str(error) == (
            "circuit breaker for 'payment-gateway' is open; calls fail fast until "
            "2024-01-15 11:30:05 UTC, when trial calls go through again"
        )

    def test_survives_pickling(self) -> None:
        """The error crosses process boundaries (multiprocessing, task queues) intact."""
        error = CircuitOpenError("svc", datetime(2024, 1, 15, 11, 30, tzinfo=UTC))
        copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - bytes we just made
        assert (copy.service, copy.retry_at, str(copy)) == (
            error.service,
            error.retry_at,
            str(error),
        )


class TestStoreTrouble:
    def test_calls_go_through_when_the_store_is_away(
        self, store: Store, clock: ManualClock
    ) -> None:
        """With every store operation failing, calls run, results and exceptions pass
        unchanged, the breaker never opens, and one warning is logged."""
        recording = RecordingStore(store)
        recording.failing = set()
        breaker = circuit_breaker(
            "payments",
            failure_threshold=1,
            supervisor=Supervisor(recording, clock),  # type: ignore[arg-type]
        )
        with capture_logs() as logs:
            for _ in range(3):
                fail_times(breaker, 1)
                assert breaker.call(succeed) == "ok"
        assert recording.operations  # it did try
        assert [log["action"] for log in logs] == ["check a circuit breaker"]
        recording.failing = None
        assert breaker.state is CircuitState.CLOSED

    def test_failed_writes_do_not_fail_the_call(self, store: Store, clock: ManualClock) -> None:
        """Reads work but writes fail: failing calls still raise their own exception."""
        recording = RecordingStore(store)
        recording.failing = {"incr", "set_if_absent", "push"}
        breaker = circuit_breaker(
            "payments",
            failure_threshold=1,
            supervisor=Supervisor(recording, clock),  # type: ignore[arg-type]
        )
        fail_times(breaker, 3)
        assert breaker.state is CircuitState.CLOSED

    def test_an_unreadable_state_fails_open(self, supervisor: Supervisor) -> None:
        """A garbled open marker lets calls through instead of breaking them."""
        supervisor.store.set("breaker:payments:open", "{not json", None)
        breaker = circuit_breaker("payments", supervisor=supervisor)
        assert breaker.call(succeed) == "ok"

    def test_the_default_supervisor_is_found_on_the_first_call(
        self, supervisor: Supervisor, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without ``supervisor=``, the process's default supervisor is looked up on the
        first call, not when the breaker is made, and only once."""
        lookups: list[int] = []

        def default() -> Supervisor:
            lookups.append(1)
            return supervisor

        monkeypatch.setattr(breaker_module, "default_supervisor", default)
        breaker = circuit_breaker("payments", failure_threshold=1)
        assert lookups == []
        fail_times(breaker, 1)
        with pytest.raises(CircuitOpenError):
            breaker.call(succeed)
        assert lookups == [1]
        assert [type(event) for event in queued(supervisor.store)] == [CircuitBreakerOpened]

    def test_no_default_store_means_unguarded_calls(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """When the default store cannot be opened, calls go through and one warning says
        so."""

        def broken() -> Supervisor:
            raise OSError("cannot open the store")

        monkeypatch.setattr(breaker_module, "default_supervisor", broken)
        breaker = circuit_breaker("payments", failure_threshold=1)
        with capture_logs() as logs:
            fail_times(breaker, 3)
            assert breaker.call(succeed) == "ok"
        assert [log["event"] for log in logs] == [
            "circuit breaker store unavailable; calls go through unguarded"
        ]
        assert breaker.state is CircuitState.CLOSED


class TestStoredState:
    def test_the_open_marker_is_json_naming_the_opening(self, supervisor: Supervisor) -> None:
        """The open marker says when the breaker opened and after how many failures."""
        open_breaker(supervisor)
        text = supervisor.store.get("breaker:payments:open")
        assert text is not None
        data = json.loads(text)
        assert data["opened_at"] == START.timestamp()
        assert data["failures"] == 3

    def test_closing_leaves_no_counters_behind(
        self, supervisor: Supervisor, clock: ManualClock
    ) -> None:
        """After a full open/trial/close cycle no breaker key is left in the store."""
        breaker = open_breaker(supervisor, reset_timeout=10, success_threshold=2)
        clock.advance(10)
        fail_times(breaker, 1)
        clock.advance(10)
        breaker.call(succeed)
        breaker.call(succeed)
        assert breaker.state is CircuitState.CLOSED
        assert supervisor.store.keys("breaker:") == []
