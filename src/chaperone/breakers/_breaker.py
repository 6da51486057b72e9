"""``circuit_breaker(...)``: guard calls to a service, as a decorator or a context manager.

The breaker's state lives in the store (see :mod:`chaperone.breakers._state`), so every
process with a breaker of the same service shares one breaker. A breaker that read
"closed" reuses that reading for ``state_refresh`` of its clock's time, so a call in the
closed state costs one clock read, plus one store read once per ``state_refresh``, and no
write when it succeeds. A counted failure drops the reading of every breaker of that
service on the same store object, then goes through the store as before: within a
process the breakers see each other's failures at once, and another process's opening
is seen within ``state_refresh``. The store being away never fails a call: the breaker
then lets every call through (it fails open) and logs.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import threading
import weakref
from collections.abc import Awaitable, Callable
from datetime import timedelta
from types import TracebackType
from typing import Any, Final, ParamSpec, TypeVar, overload

import structlog

from chaperone._clock import utc_from_timestamp
from chaperone._durations import parse_duration
from chaperone._exceptions import CircuitOpenError
from chaperone.breakers._state import (
    CLOSED,
    Admission,
    BreakerPolicy,
    BreakerState,
    CircuitState,
)
from chaperone.supervision import Supervisor, default_supervisor

__all__ = ["CircuitBreaker", "circuit_breaker"]

P = ParamSpec("P")
R = TypeVar("R")

ExceptionTypes = type[BaseException] | tuple[type[BaseException], ...]
Duration = float | str | timedelta

DEFAULT_FAILURE_THRESHOLD: Final = 5
DEFAULT_STATE_REFRESH: Final = 1.0
"""Seconds a breaker reuses a "closed" reading of the store."""

_log = structlog.get_logger("chaperone.breakers")
_calls: contextvars.ContextVar[tuple[tuple[CircuitBreaker, Admission | None], ...]] = (
    contextvars.ContextVar("chaperone_breaker_calls", default=())
)
"""The calls inside ``with breaker:`` blocks of this thread or task, innermost last."""


def _seconds(value: Duration, name: str) -> float:
    try:
        seconds = parse_duration(value).total_seconds()
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None
    if seconds <= 0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    return seconds


def _refresh_seconds(value: Duration) -> float:
    try:
        return parse_duration(value).total_seconds()
    except ValueError as exc:
        raise ValueError(f"state_refresh: {exc}") from None


class _Readings:
    """The breakers of one service on one store object (in this process): a failure in
    any of them drops every one's "closed" reading.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.generation = 0
        """Bumped by every drop: a store read begun before it is not kept after it."""
        self.breakers: weakref.WeakSet[CircuitBreaker] = weakref.WeakSet()

    def forget(self) -> None:
        """Drop every breaker's reading: their next calls read the store."""
        with self.lock:
            self.generation += 1
            for breaker in self.breakers:
                breaker._closed_until = float("-inf")


_readings: weakref.WeakKeyDictionary[object, dict[str, _Readings]] = weakref.WeakKeyDictionary()
_readings_lock = threading.Lock()


def _readings_of(store: object, service: str) -> _Readings:
    """The shared readings of ``service``'s breakers on ``store``; private ones when the
    store cannot be a weak key.
    """
    with _readings_lock:
        try:
            by_service = _readings.setdefault(store, {})
        except TypeError:  # unhashable or not weakly referenceable: share nothing
            return _Readings()
        return by_service.setdefault(service, _Readings())


def _no_clock() -> float:
    """Stands for the clock until the breaker has found its supervisor (nothing is
    cached before then, so the reading is never used).
    """
    return 0.0


def _count(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a whole number of at least 1, got {value!r}")
    return value


def _exception_types(value: ExceptionTypes, name: str) -> tuple[type[BaseException], ...]:
    types = value if isinstance(value, tuple) else (value,)
    for item in types:
        if not (isinstance(item, type) and issubclass(item, BaseException)):
            raise TypeError(f"{name} takes exception classes, got {item!r}")
    return types


def circuit_breaker(
    service: str,
    failure_threshold: int | None = None,
    reset_timeout: Duration = 60,
    success_threshold: int = 1,
    *,
    failure_rate: float | None = None,
    minimum_calls: int = 10,
    window: Duration = 60,
    exceptions: ExceptionTypes = (Exception,),
    exclude: ExceptionTypes = (),
    state_refresh: Duration = DEFAULT_STATE_REFRESH,
    supervisor: Supervisor | None = None,
) -> CircuitBreaker:
    """A circuit breaker for calls to ``service``, shared by every process on the store.

    Use it as a decorator (of sync or async functions) or a context manager (``with`` or
    ``async with``)::

        payments = chaperone.circuit_breaker("payment-gateway", reset_timeout="1m")

        @payments
        def charge(order): ...

        with payments:
            refund(order)

    The breaker is *closed* at first: calls go through and failures are counted. It
    *opens* after ``failure_threshold`` consecutive failures (5 unless ``failure_rate``
    is given), or, with ``failure_rate``, when a failing call finds that at least
    ``failure_rate`` percent of at least ``minimum_calls`` calls in the last ``window``
    failed; both rules apply when both are given. While open, calls fail fast with
    :class:`~chaperone.CircuitOpenError` without running. Once ``reset_timeout`` has
    passed it is *half-open*: calls go through as trials; ``success_threshold``
    successful trials close it, a failed one keeps it open for another ``reset_timeout``.

    Opening reports :class:`~chaperone.CircuitBreakerOpened` once, however many processes
    see the failures; closing reports :class:`~chaperone.CircuitBreakerClosed`. Both go to
    the monitor through the store, which turns them into a ``circuit_breaker`` alert and
    its resolution.

    A call fails when it raises one of ``exceptions`` that is not one of ``exclude``;
    any other exception counts as a success (the service answered), except those that
    are not :class:`Exception` (cancellation, ``KeyboardInterrupt``), which do not count.
    Exceptions are re-raised unchanged. Durations take seconds, a timedelta or text
    such as ``"1m"``; the failure-rate window is summed over ten buckets, so it reaches
    back between nine and ten tenths of ``window``. ``supervisor`` says which store and
    clock to use (by default the process's configured one, opened on the first call).

    A breaker that read "closed" from the store trusts that reading for
    ``state_refresh`` (1 second by default) before reading again, so a healthy service
    costs no store round trip per call: another process opening the breaker is noticed
    within this long; 0 reads the store on every call. A failure this breaker sees is
    always counted in the store at once.
    """
    if not isinstance(service, str) or not service:
        raise ValueError(f"service must be a non-empty string, got {service!r}")
    if failure_rate is not None:
        if isinstance(failure_rate, bool) or not 0 < failure_rate <= 100:
            raise ValueError(f"failure_rate is a percentage in (0, 100], got {failure_rate!r}")
    elif failure_threshold is None:
        failure_threshold = DEFAULT_FAILURE_THRESHOLD
    policy = BreakerPolicy(
        failure_threshold=None
        if failure_threshold is None
        else _count(failure_threshold, "failure_threshold"),
        reset_timeout=_seconds(reset_timeout, "reset_timeout"),
        success_threshold=_count(success_threshold, "success_threshold"),
        failure_rate=None if failure_rate is None else float(failure_rate),
        minimum_calls=_count(minimum_calls, "minimum_calls"),
        window=_seconds(window, "window"),
    )
    return CircuitBreaker(
        service,
        policy,
        exceptions=_exception_types(exceptions, "exceptions"),
        exclude=_exception_types(exclude, "exclude"),
        state_refresh=_refresh_seconds(state_refresh),
        supervisor=supervisor,
    )


class CircuitBreaker:
    """Guards calls to one service; built by :func:`circuit_breaker`.

    One object may be shared by threads and tasks, and used for nested blocks.
    """

    def __init__(
        self,
        service: str,
        policy: BreakerPolicy,
        *,
        exceptions: tuple[type[BaseException], ...],
        exclude: tuple[type[BaseException], ...],
        state_refresh: float = DEFAULT_STATE_REFRESH,
        supervisor: Supervisor | None,
    ) -> None:
        self.service = service
        self.policy = policy
        self.state_refresh = state_refresh
        self._exceptions = exceptions
        self._exclude = exclude
        self._shared: BreakerState | None = None
        self._timestamp: Callable[[], float] = _no_clock
        """The supervisor's clock, read on every call."""
        self._closed_until = float("-inf")
        """Until this time (of that clock) calls reuse the last "closed" reading."""
        self._readings = _Readings()
        self._records_successes = policy.failure_rate is not None
        """Whether a success while closed writes (the failure-rate mode counts calls)."""
        self._warned = False
        if supervisor is not None:
            self._attach(supervisor)

    def __repr__(self) -> str:
        return f"<CircuitBreaker {self.service!r}>"

    # -- inspection ------------------------------------------------------------------

    @property
    def state(self) -> CircuitState:
        """The breaker's state now, read from the store (store errors propagate)."""
        shared = self._state()
        if shared is None:
            return CircuitState.CLOSED
        return shared.admit(shared.supervisor.clock.timestamp()).state

    def reset(self) -> bool:
        """Close the breaker by hand; return whether it was open (and is reported closed)."""
        shared = self._state()
        if shared is None:
            return False
        return shared.close(shared.supervisor.clock.timestamp())

    # -- calls -----------------------------------------------------------------------

    # The hot path: while the "closed" reading is fresh, a call costs one clock read and
    # one comparison (_admit), and a success nothing more.

    def _admit(self) -> Admission | None:
        """Admit a call: on the fresh "closed" reading, else on the store's word."""
        return CLOSED if self._timestamp() < self._closed_until else self._before()

    def call(self, function: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Call ``function(*args, **kwargs)`` through the breaker."""
        admission = self._admit()
        try:
            result = function(*args, **kwargs)
        except BaseException as exc:
            self._after(admission, exc)
            raise
        if admission is not CLOSED or self._records_successes:
            self._after(admission, None)
        return result

    async def acall(
        self, function: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """Await ``function(*args, **kwargs)`` through the breaker."""
        admission = self._admit()
        try:
            result = await function(*args, **kwargs)
        except BaseException as exc:
            self._after(admission, exc)
            raise
        if admission is not CLOSED or self._records_successes:
            self._after(admission, None)
        return result

    @overload
    def __call__(
        self, function: Callable[P, Awaitable[R]]
    ) -> Callable[P, Awaitable[R]]: ...  # pragma: no cover - typing only

    @overload
    def __call__(self, function: Callable[P, R]) -> Callable[P, R]: ...  # pragma: no cover

    def __call__(self, function: Callable[P, Any]) -> Callable[P, Any]:
        """Decorate ``function`` (sync or async): every call goes through the breaker."""
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def guarded_async(*args: P.args, **kwargs: P.kwargs) -> Any:
                return await self.acall(function, *args, **kwargs)

            return guarded_async

        @functools.wraps(function)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> Any:
            return self.call(function, *args, **kwargs)

        return guarded

    def __enter__(self) -> CircuitBreaker:
        admission = self._admit()
        _calls.set((*_calls.get(), (self, admission)))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._after(self._pop(), exc)

    async def __aenter__(self) -> CircuitBreaker:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._after(self._pop(), exc)

    # -- the work --------------------------------------------------------------------

    def _attach(self, supervisor: Supervisor) -> BreakerState:
        readings = _readings_of(supervisor.store, self.service)
        with readings.lock:
            readings.breakers.add(self)
        self._readings = readings
        shared = self._shared = BreakerState(self.service, self.policy, supervisor)
        self._timestamp = supervisor.clock.timestamp
        return shared

    def _state(self) -> BreakerState | None:
        """The shared state, on the default supervisor when none was given; None (and a
        warning, once) when that cannot be opened.
        """
        shared = self._shared
        if shared is None:
            try:
                supervisor = default_supervisor()
            except Exception as exc:
                if not self._warned:
                    self._warned = True
                    _log.warning(
                        "circuit breaker store unavailable; calls go through unguarded",
                        service=self.service,
                        error=f"{type(exc).__name__}: {exc}",
                    )
                return None
            shared = self._attach(supervisor)
        return shared

    def _before(self) -> Admission | None:
        """Admit a call on the store's word or raise CircuitOpenError; None lets it through
        unrecorded. A "closed" answer with no failures counted is reused until
        ``state_refresh`` has passed.
        """
        shared = self._state()
        if shared is None:
            return None
        readings = self._readings
        generation = readings.generation
        now = shared.supervisor.clock.timestamp()
        admission = shared.supervisor.safely("check a circuit breaker", lambda: shared.admit(now))
        if admission is CLOSED and self.state_refresh > 0:
            with readings.lock:
                if readings.generation == generation:  # no failure since the read began
                    self._closed_until = now + self.state_refresh
        elif admission is not None and admission.state is CircuitState.OPEN:
            raise CircuitOpenError(self.service, utc_from_timestamp(admission.retry_at))
        return admission

    def _after(self, admission: Admission | None, exc: BaseException | None) -> None:
        """Record how an admitted call went (never raises)."""
        if admission is None:
            return
        failed = self._failed(exc)
        if failed is None:
            return
        if not failed and admission is CLOSED and self.policy.failure_rate is None:
            return  # the common case: a success while closed with no failures writes nothing
        shared = self._shared
        if shared is None:  # pragma: no cover - an admission comes from the shared state
            return
        now = shared.supervisor.clock.timestamp()
        shared.supervisor.safely(
            "record a circuit breaker call",
            lambda: shared.record(admission, failed=failed, now=now),
        )
        if failed:
            self._readings.forget()  # after recording: a read racing it is not kept

    def _failed(self, exc: BaseException | None) -> bool | None:
        """Whether ``exc`` makes the call a failure; None when it does not count at all."""
        if exc is None or isinstance(exc, self._exclude):
            return False
        if isinstance(exc, self._exceptions):
            return True
        return False if isinstance(exc, Exception) else None

    def _pop(self) -> Admission | None:
        """Take this breaker's innermost call off the context's stack."""
        calls = _calls.get()
        for index in range(len(calls) - 1, -1, -1):
            if calls[index][0] is self:
                _calls.set(calls[:index] + calls[index + 1 :])
                return calls[index][1]
        return None
