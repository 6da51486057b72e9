"""``supervise(...)``: a job's start and end around a block or a function, and the
process's default supervisor on the configured store.

The store being away never fails the job: the job runs, its facts are kept and written
once the store answers (see :mod:`chaperone.supervision._supervisor`). At exit, the
default supervisor waits a little (:data:`EXIT_FLUSH`) for what it still holds.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import functools
import inspect
import os
import socket
import threading
import uuid
from collections.abc import Callable, Mapping
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, ParamSpec, Self, TypeVar, cast

import attrs
import structlog

from chaperone._clock import SystemClock
from chaperone._durations import parse_duration
from chaperone._exceptions import StoreError
from chaperone.store import Store
from chaperone.supervision._job import Supervision
from chaperone.supervision._records import JobRecord
from chaperone.supervision._resources import DEFAULT_INTERVAL
from chaperone.supervision._supervisor import Supervisor

if TYPE_CHECKING:
    from chaperone.schedules import Schedule

_log = structlog.get_logger("chaperone.supervision")

__all__ = ["EXIT_FLUSH", "current_job", "default_supervisor", "supervise"]

P = ParamSpec("P")
R = TypeVar("R")

EXIT_FLUSH: Final = 5.0
"""Seconds the default supervisor waits at exit for records it could not write yet."""

_current: contextvars.ContextVar[Supervision | None] = contextvars.ContextVar(
    "chaperone_current_job", default=None
)


def current_job() -> Supervision | None:
    """The job supervised in this context (inside ``supervise``), if any."""
    return _current.get()


def _seconds(value: float | str | timedelta | None, name: str) -> float | None:
    if value is None:
        return None
    seconds = parse_duration(value).total_seconds()
    if seconds <= 0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    return seconds


_default_supervisor: Supervisor | None = None
_default_lock = threading.Lock()


def default_supervisor() -> Supervisor:
    """The process's supervisor on the configured store (built on first use).

    Its store is resilient: when it cannot be opened or fails later, the jobs go on, their
    facts are kept in memory (and carried to the store once it is back), and the process
    watches its own jobs meanwhile (:mod:`chaperone.supervision._inline`). A configuration
    that cannot be loaded raises ConfigError.
    """
    global _default_supervisor
    with _default_lock:
        if _default_supervisor is None:
            from chaperone.config import load_settings
            from chaperone.store import default_store_url, open_resilient_store
            from chaperone.supervision._inline import InlineWatch

            settings = load_settings(default_store_url=default_store_url())
            clock = SystemClock()
            store = open_resilient_store(
                settings.store_url,
                clock,
                key="CHAPERONE_STORE",
                source=settings.source_of("store.url"),
                probe_interval=settings.store_probe_interval.total_seconds(),
            )
            supervisor = Supervisor(store, clock, lease=settings.abandoned_after.total_seconds())
            supervisor.follow(store)
            supervisor.on_cycle = InlineWatch(settings, store, clock, supervisor).cycle
            atexit.register(supervisor.flush, EXIT_FLUSH)
            _default_supervisor = supervisor
        return _default_supervisor


class _UnavailableStore:
    """Stands in for a store that cannot even be named (the configuration does not load):
    every operation raises a StoreError saying why, which the supervisor logs instead of
    failing the job.
    """

    url = "unavailable://"

    def __init__(self, error: Exception) -> None:
        self._reason = f"{type(error).__name__}: {error}"

    def __getattr__(self, name: str) -> Callable[..., Any]:
        def unavailable(*args: Any, **kwargs: Any) -> Any:
            raise StoreError(f"the configured store could not be opened ({self._reason})")

        return unavailable


def _default_or_unavailable() -> Supervisor:
    """The default supervisor, or, when the configuration cannot be loaded, one whose
    every write fails (and is logged): the job runs unsupervised rather than not at all.
    """
    try:
        return default_supervisor()
    except Exception as exc:
        _log.error("supervision unavailable; the job runs unsupervised", error=str(exc))
        return Supervisor(cast(Store, _UnavailableStore(exc)))


@attrs.frozen(kw_only=True)
class _Options:
    name: str
    timeout: float | None
    heartbeat_interval: float | None
    missed_heartbeats: int
    memory_limit_mb: float | None
    cpu_limit_percent: float | None
    resource_interval: float
    metadata: Mapping[str, Any]
    alert_on_failure: bool
    supervisor: Supervisor | None
    schedule: Schedule | None


def _schedule(
    name: str,
    schedule: str | None,
    grace: float | str | timedelta | None,
    timezone: str | None,
) -> Schedule | None:
    """The schedule ``supervise`` declares, or None; ValueError when one is wrong."""
    if schedule is None:
        if grace is not None or timezone is not None:
            raise ValueError("grace and timezone need a schedule")
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from chaperone.schedules import Schedule  # cron: only for scheduled jobs

    options: dict[str, Any] = {}
    if grace is not None:
        options["grace"] = parse_duration(grace)
    if timezone is not None:
        try:
            options["timezone"] = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {timezone!r}") from None
    return Schedule.from_text(name, schedule, **options)


def _declare(supervisor: Supervisor, schedule: Schedule) -> None:
    """Register ``schedule`` in the store after the job's start, by the writer (never
    failing the job).
    """
    from chaperone.schedules import declare

    def task() -> None:
        supervisor.safely(
            "declare a schedule",
            lambda: declare(
                supervisor.store,
                schedule,
                f"code in {supervisor.description}",
                supervisor.clock.now(),
            ),
        )

    supervisor.submit(task)


class supervise:  # noqa: N801 - used like a function: `with supervise(...)`, `@supervise(...)`
    """Supervise a job: a context manager (sync or async) and a decorator (sync or async
    functions). Each use starts a new job with its own supervision id.

    ``timeout`` and ``heartbeat_interval`` take seconds, a timedelta, or "5m"; a job is
    stuck after ``heartbeat_interval * missed_heartbeats`` without a heartbeat. With
    ``memory_limit_mb`` or ``cpu_limit_percent``, this process's tree is sampled every
    ``resource_interval`` in a background thread. An exception leaving the block marks
    the job failed and is re-raised unchanged; with ``alert_on_failure`` (by default on
    for a job with a ``schedule``, off otherwise), it also raises ``job_failed`` (one
    incident per job name, resolved by the next successful run), from the supervisor's
    writer: the job never waits for it.

    ``schedule`` declares when runs are expected (kept in the store, where ``chaperone
    schedules`` lists it): five cron fields or a nickname (``"0 3 * * *"``, ``"@daily"``,
    read in ``timezone``, UTC by default) or ``"every 15m"``; a run not started ``grace``
    (default 5 minutes) after its expected time is missed. Each run refreshes the
    declaration; the config file's ``[[schedules]]`` entry for the same name wins over it.
    """

    def __init__(
        self,
        name: str,
        *,
        timeout: float | str | timedelta | None = None,
        heartbeat_interval: float | str | timedelta | None = None,
        missed_heartbeats: int = 3,
        memory_limit_mb: float | None = None,
        cpu_limit_percent: float | None = None,
        resource_interval: float | str | timedelta = DEFAULT_INTERVAL,
        metadata: Mapping[str, Any] | None = None,
        alert_on_failure: bool | None = None,
        supervisor: Supervisor | None = None,
        schedule: str | None = None,
        grace: float | str | timedelta | None = None,
        timezone: str | None = None,
    ) -> None:
        if missed_heartbeats < 1:
            raise ValueError(f"missed_heartbeats must be at least 1, got {missed_heartbeats}")
        limits = (("memory_limit_mb", memory_limit_mb), ("cpu_limit_percent", cpu_limit_percent))
        for label, limit in limits:
            if limit is not None and limit <= 0:
                raise ValueError(f"{label} must be positive, got {limit!r}")
        scheduled = _schedule(name, schedule, grace, timezone)
        if alert_on_failure is None:  # on for a scheduled job, as its schedule says
            alert_on_failure = scheduled.alert_on_failure if scheduled is not None else False
        self._options = _Options(
            name=name,
            timeout=_seconds(timeout, "timeout"),
            heartbeat_interval=_seconds(heartbeat_interval, "heartbeat_interval"),
            missed_heartbeats=missed_heartbeats,
            memory_limit_mb=memory_limit_mb,
            cpu_limit_percent=cpu_limit_percent,
            resource_interval=_seconds(resource_interval, "resource_interval") or DEFAULT_INTERVAL,
            metadata=dict(metadata or {}),
            alert_on_failure=alert_on_failure,
            supervisor=supervisor,
            schedule=scheduled,
        )
        self._active: dict[Supervision, contextvars.Token[Supervision | None]] = {}

    def _begin(self) -> Supervision:
        options = self._options
        supervisor = options.supervisor or _default_or_unavailable()
        record = JobRecord(
            supervision_id=str(uuid.uuid4()),
            name=options.name,
            started_at=supervisor.clock.timestamp(),
            heartbeat_interval=options.heartbeat_interval,
            missed_heartbeats=options.missed_heartbeats,
            timeout=options.timeout,
            memory_limit_mb=options.memory_limit_mb,
            cpu_limit_percent=options.cpu_limit_percent,
            metadata=dict(options.metadata),
            alert_on_failure=options.alert_on_failure,
            pid=os.getpid(),
            host=socket.gethostname(),
        )
        job = Supervision(supervisor, record, resource_interval=options.resource_interval)
        job.start()
        if options.schedule is not None:
            _declare(supervisor, options.schedule)
        self._active[job] = _current.set(job)
        return job

    def _end(self, error: BaseException | None) -> None:
        # One supervise object may run jobs in several threads or tasks at once: end the
        # job of this context, the current one.
        job = _current.get()
        token = None if job is None else self._active.pop(job, None)
        if job is None or token is None:
            job, token = self._active.popitem()  # left in another context than entered
        with contextlib.suppress(ValueError):  # a token of another context: nothing to restore
            _current.reset(token)
        job.finish(error)

    def __enter__(self) -> Supervision:
        return self._begin()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._end(exc)

    async def __aenter__(self) -> Supervision:
        return self._begin()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._end(exc)

    def __call__(self, function: Callable[P, R]) -> Callable[P, R]:
        """Decorate ``function``: each call runs as a new supervised job."""
        options = self._options
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def run_async(*args: P.args, **kwargs: P.kwargs) -> Any:
                async with supervise._from(options):
                    return await function(*args, **kwargs)

            return run_async  # type: ignore[return-value]

        @functools.wraps(function)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            with supervise._from(options):
                return function(*args, **kwargs)

        return run

    @classmethod
    def _from(cls, options: _Options) -> Self:
        instance = cls.__new__(cls)
        instance._options = options
        instance._active = {}
        return instance
