"""Circuit breakers as properties: for any sequence of successes, failures, interruptions
and clock moves, spread over several breaker objects sharing one store (as processes
would), the breaker behaves as a small reference model says, and its reports alternate
opened, closed, opened, ... never two of a kind in a row."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Literal

import attrs
from hypothesis import event, given
from hypothesis import strategies as st

from chaperone._clock import ManualClock
from chaperone._event_codec import decode_event
from chaperone._events import CircuitBreakerClosed, CircuitBreakerOpened, Event
from chaperone._exceptions import CircuitOpenError
from chaperone.breakers import CircuitBreaker, CircuitState, circuit_breaker
from chaperone.store import MemoryStore, Store
from chaperone.supervision import Supervisor, _keys

BREAKERS = 3
"""Breaker objects per example, each with its own supervisor on the shared store."""
BUCKETS = 10
"""The failure-rate window is summed over this many buckets (the documented behaviour)."""

Outcome = Literal["ok", "failed", "interrupted", "rejected"]


class ServiceDownError(Exception):
    """What the guarded call raises to fail."""


class Interrupted(BaseException):
    """Cancellation: counts neither as a failure nor as a success."""


@attrs.frozen
class Call:
    """``times`` calls in a row through breaker ``which`` that succeed, fail or are
    interrupted."""

    which: int
    kind: Literal["success", "failure", "interrupt"]
    times: int = 1


@attrs.frozen
class Advance:
    """Move the clock forward by ``seconds``."""

    seconds: float


Step = Call | Advance


@attrs.define
class Model:
    """What a breaker should do, written plainly: one object, no store, no processes."""

    failure_threshold: int | None
    reset_timeout: float
    success_threshold: int
    failure_rate: float | None = None
    minimum_calls: int = 1
    window: float = 1.0
    state: Literal["closed", "open"] = "closed"
    consecutive_failures: int = 0
    retry_at: float = 0.0
    trial_successes: int = 0
    calls: list[tuple[int, bool]] = attrs.Factory(list)
    """(bucket, failed) of every call recorded while closed, for the failure rate."""
    events: list[str] = attrs.Factory(list)
    opened_counts: list[int] = attrs.Factory(list)
    """The failure count each opening reports."""

    def current(self, now: float) -> CircuitState:
        if self.state == "closed":
            return CircuitState.CLOSED
        return CircuitState.HALF_OPEN if now >= self.retry_at else CircuitState.OPEN

    def call(self, kind: str, now: float) -> Outcome:
        state = self.current(now)
        if state is CircuitState.OPEN:
            return "rejected"
        if kind == "interrupt":
            return "interrupted"
        failed = kind == "failure"
        if state is CircuitState.HALF_OPEN:
            if failed:
                self.retry_at = now + self.reset_timeout
                self.trial_successes = 0
            else:
                self.trial_successes += 1
                if self.trial_successes >= self.success_threshold:
                    self._close()
        elif failed:
            self._closed_failure(now)
        else:
            self.consecutive_failures = 0
            self.calls.append((self._bucket(now), False))
        return "failed" if failed else "ok"

    def _closed_failure(self, now: float) -> None:
        self.consecutive_failures += 1
        if (
            self.failure_threshold is not None
            and self.consecutive_failures >= self.failure_threshold
        ):
            self._open(now, self.consecutive_failures)
            return
        if self.failure_rate is not None:
            self.calls.append((self._bucket(now), True))
            last = self._bucket(now)
            recent = [failed for bucket, failed in self.calls if last - BUCKETS < bucket <= last]
            failures = sum(recent)
            if len(recent) >= self.minimum_calls and failures * 100 >= self.failure_rate * len(
                recent
            ):
                self._open(now, failures)

    def _bucket(self, now: float) -> int:
        return int(now // (self.window / BUCKETS))

    def _open(self, now: float, failures: int) -> None:
        self.opened_counts.append(failures)
        self.state = "open"
        self.retry_at = now + self.reset_timeout
        self.trial_successes = 0
        self.events.append("opened")

    def _close(self) -> None:
        self.state = "closed"
        self.consecutive_failures = 0
        self.calls.clear()
        self.events.append("closed")


def _raise(error: BaseException) -> Callable[[], None]:
    def function() -> None:
        raise error

    return function


def run(breaker: CircuitBreaker, kind: str) -> Outcome:
    """Make one call of ``kind`` through ``breaker``; say how it went."""
    function = {
        "success": lambda: None,
        "failure": _raise(ServiceDownError()),
        "interrupt": _raise(Interrupted()),
    }[kind]
    try:
        breaker.call(function)
    except CircuitOpenError:
        return "rejected"
    except ServiceDownError:
        return "failed"
    except Interrupted:
        return "interrupted"
    return "ok"


def names(events: list[Event]) -> list[str]:
    return ["opened" if isinstance(event, CircuitBreakerOpened) else "closed" for event in events]


def check(model: Model, steps: list[Step], **options: Any) -> None:
    """Run ``steps`` on real breakers and on the model; they must agree at every step."""
    clock = ManualClock()
    store: Store = MemoryStore(clock)
    breakers = [
        circuit_breaker("service", supervisor=Supervisor(store, clock), **options)
        for _ in range(BREAKERS)
    ]
    events: list[Event] = []
    try:
        for index, step in enumerate(steps):
            if isinstance(step, Advance):
                clock.advance(step.seconds)
            else:
                for _ in range(step.times):
                    expected = model.call(step.kind, clock.timestamp())
                    assert run(breakers[step.which], step.kind) == expected, (index, step)
            now = clock.timestamp()
            assert breakers[0].state is model.current(now), (index, step)
            events.extend(decode_event(text) for text in store.pop(_keys.EVENTS_QUEUE, 100))
            assert names(events) == model.events, (index, step)
    finally:
        store.close()
    assert all(isinstance(e, CircuitBreakerOpened | CircuitBreakerClosed) for e in events)
    kinds = names(events)
    assert all(first != second for first, second in itertools.pairwise(kinds))
    assert kinds[:1] in ([], ["opened"])
    event(f"reports: {min(len(kinds), 3)}+")
    openings = [event for event in events if isinstance(event, CircuitBreakerOpened)]
    assert [opened.failure_count for opened in openings] == model.opened_counts
    for opened in openings:
        assert opened.retry_at == opened.opened_at + timedelta(seconds=options["reset_timeout"])


def steps(advances: st.SearchStrategy[float]) -> st.SearchStrategy[list[Step]]:
    """Calls through any of the breakers, and clock moves, in any order."""
    call = st.builds(
        Call,
        which=st.integers(0, BREAKERS - 1),
        kind=st.sampled_from(["success", "failure", "failure", "interrupt"]),
        times=st.integers(1, 4),
    )
    return st.lists(st.one_of(call, call, st.builds(Advance, advances)), min_size=10, max_size=40)


class TestConsecutiveFailures:
    @given(
        failure_threshold=st.integers(1, 4),
        success_threshold=st.integers(1, 3),
        reset_timeout=st.sampled_from([1.0, 5.0, 30.0]),
        data=st.data(),
    )
    def test_matches_the_model(
        self,
        failure_threshold: int,
        success_threshold: int,
        reset_timeout: float,
        data: st.DataObject,
    ) -> None:
        """Outcome of every call, state after every step and the reports so far match the
        model; opened and closed reports alternate, starting with opened."""
        advances = st.sampled_from([0.25, 0.999999, 1.0, 1.5]).map(lambda f: f * reset_timeout)
        sequence = data.draw(steps(advances), label="steps")
        model = Model(
            failure_threshold=failure_threshold,
            reset_timeout=reset_timeout,
            success_threshold=success_threshold,
        )
        check(
            model,
            sequence,
            failure_threshold=failure_threshold,
            reset_timeout=reset_timeout,
            success_threshold=success_threshold,
        )


class TestFailureRate:
    @given(
        failure_rate=st.sampled_from([25.0, 50.0, 66.6, 100.0]),
        minimum_calls=st.integers(1, 6),
        failure_threshold=st.none() | st.integers(2, 6),
        success_threshold=st.integers(1, 2),
        sequence=steps(st.sampled_from([0.5, 1.0, 2.5, 7.0, 10.0, 20.0])),
    )
    def test_matches_the_model(
        self,
        failure_rate: float,
        minimum_calls: int,
        failure_threshold: int | None,
        success_threshold: int,
        sequence: list[Step],
    ) -> None:
        """In failure-rate mode (with or without a consecutive threshold too), calls,
        state and reports match the model of a ten-bucket sliding window."""
        model = Model(
            failure_threshold=failure_threshold,
            reset_timeout=10.0,
            success_threshold=success_threshold,
            failure_rate=failure_rate,
            minimum_calls=minimum_calls,
            window=20.0,
        )
        check(
            model,
            sequence,
            failure_threshold=failure_threshold,
            reset_timeout=10.0,
            success_threshold=success_threshold,
            failure_rate=failure_rate,
            minimum_calls=minimum_calls,
            window=20.0,
        )
