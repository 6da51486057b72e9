"""The job side: ``supervise(...)`` records a job's start, heartbeats, progress and end.

Job processes only write cheap facts to the store; detection runs in the monitor. A
heartbeat in a hot loop costs a clock read and a comparison: heartbeats coalesce, and the
latest is written at most once per flush interval (a quarter of the heartbeat interval,
at most a second). The store being away never fails the job: the supervisor keeps the
latest unwritten record of each job in memory (one per job, the newest wins) and writes it
once the store answers again. After a failed store call, the job's own calls only buffer
until a retry delay (1 s, doubling up to 30 s) has passed, so a job never waits out the
store's retry budget at every heartbeat; a background timer retries on the same schedule,
so the end of a job reaches the store even when the job makes no further call.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import json
import os
import socket
import threading
import uuid
from collections.abc import Callable, Mapping
from datetime import timedelta
from types import TracebackType
from typing import Any, Final, ParamSpec, Self, TypeVar, cast

import attrs
import structlog

from chaperone._clock import Clock, SystemClock
from chaperone._durations import parse_duration
from chaperone._event_codec import encode_event
from chaperone._events import Event, IncidentRef, JobCompleted
from chaperone._exceptions import StoreError
from chaperone.store import Store
from chaperone.supervision import _keys
from chaperone.supervision._records import JobRecord, JobState, flush_interval
from chaperone.supervision._resources import DEFAULT_INTERVAL, ResourceSampler
from chaperone.supervision._stats import record_job_finished

__all__ = ["Supervision", "Supervisor", "current_job", "supervise"]

P = ParamSpec("P")
R = TypeVar("R")

RETENTION: Final = 86400.0
"""A finished job's record stays a day, for ``chaperone jobs`` and the history."""
_ERROR_TEXT_LIMIT: Final = 500
RETRY_FIRST: Final = 1.0
"""Seconds after a failed store call before the job's calls try the store again."""
RETRY_MAX: Final = 30.0
"""The retry delay doubles after each failed retry, up to this."""
PENDING_LIMIT: Final = 10_000
"""At most this many jobs' unwritten records are kept; beyond, the oldest is dropped."""

_log = structlog.get_logger("chaperone.supervision")
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


@attrs.frozen
class _Unwritten:
    record: JobRecord
    ttl: float | None


class Supervisor:
    """Writes supervision facts to one store. Cheap; one per process is plenty.

    A record the store refused is kept (the latest per job) and written later: by the next
    call that finds the store answering, by :meth:`retry_pending`, or by a background timer
    when ``retry_in_background`` (by default, when the clock is the real one: with an
    injected clock, the caller drives the retries).
    """

    def __init__(
        self,
        store: Store,
        clock: Clock | None = None,
        *,
        retry_in_background: bool | None = None,
    ) -> None:
        self.store = store
        self.clock: Clock = clock or SystemClock()
        self._warned_at = 0.0
        self._background = (
            isinstance(self.clock, SystemClock)
            if retry_in_background is None
            else retry_in_background
        )
        self._lock = threading.Lock()
        self._unwritten: dict[str, _Unwritten] = {}
        self._writing: set[str] = set()
        self._retry_delay = 0.0  # 0 while the store answers
        self._retry_at = float("-inf")
        self._timer: threading.Timer | None = None

    @property
    def pending(self) -> dict[str, JobRecord]:
        """The records not written yet, by supervision id (a copy)."""
        with self._lock:
            return {key: entry.record for key, entry in self._unwritten.items()}

    @property
    def store_away(self) -> bool:
        """Whether the last store call failed and the retry delay has not passed yet."""
        return self.clock.timestamp() < self._retry_at

    def safely(self, action: str, operation: Callable[[], R]) -> R | None:
        """Run a store operation; log (at most once a minute) instead of raising. A success
        after failures writes what was kept meanwhile.
        """
        succeeded, value = self._call(action, operation)
        if succeeded and self._unwritten:
            self._flush_soon()
        return value

    def _call(self, action: str, operation: Callable[[], R]) -> tuple[bool, R | None]:
        """Run a store operation; note whether the store answered."""
        try:
            value = operation()
        except Exception as exc:
            now = self.clock.timestamp()
            with self._lock:
                delay = min(RETRY_MAX, self._retry_delay * 2) if self._retry_delay else RETRY_FIRST
                self._retry_delay = delay
                self._retry_at = now + delay
                self._arm_timer(delay)
            if now - self._warned_at >= 60:
                self._warned_at = now
                _log.warning(
                    "supervision store unavailable; the job goes on",
                    action=action,
                    error=f"{type(exc).__name__}: {exc}",
                )
            return False, None
        if self._retry_delay:
            with self._lock:
                self._retry_delay = 0.0
                self._retry_at = float("-inf")
        return True, value

    def _if_up(self, action: str, operation: Callable[[], R]) -> R | None:
        """Like :meth:`safely`, but skipped (None) while the store is away: for the job's
        own call path, which must not wait out the store's retries again and again.
        """
        if self.store_away:
            return None
        return self.safely(action, operation)

    def emit(self, event: Event) -> bool:
        """Hand an event to the monitor through the store's queue; return whether it was
        queued (False when the store is away).
        """
        text = encode_event(event)

        def push() -> bool:
            self.store.push(_keys.EVENTS_QUEUE, text)
            return True

        return bool(self.safely("queue an event", push))

    def write(self, record: JobRecord, *, ttl: float | None = None) -> bool:
        """Write a job record and (re)schedule its checks; return whether it was written.

        When the store fails, or failed less than the retry delay ago, the record is kept
        instead (replacing any older one of the job) and written later.
        """
        key = record.supervision_id
        with self._lock:
            if key in self._writing or self.clock.timestamp() < self._retry_at:
                self._keep(key, _Unwritten(record, ttl))
                if self._retry_delay:
                    self._arm_timer(max(0.0, self._retry_at - self.clock.timestamp()))
                return False
            self._unwritten.pop(key, None)  # this record is newer
            self._writing.add(key)
        written = False
        try:
            written = self._write_now(record, ttl)
        finally:
            with self._lock:
                self._writing.discard(key)
                if not written:
                    if key not in self._unwritten:  # else a newer one came meanwhile
                        self._keep(key, _Unwritten(record, ttl))
                    self._arm_timer(self._retry_delay)
                more = bool(self._unwritten)
        if written and more:
            self._flush_soon()
        return written

    def retry_pending(self) -> int:
        """Try to write every kept record now; return how many were written. Stops at the
        first failure (the rest stay kept).
        """
        with self._lock:
            batch = [(k, e) for k, e in self._unwritten.items() if k not in self._writing]
            self._writing.update(key for key, _ in batch)
        written = 0
        for index, (key, entry) in enumerate(batch):
            succeeded = self._write_now(entry.record, entry.ttl)
            with self._lock:
                self._writing.discard(key)
                if not succeeded:
                    self._writing.difference_update(k for k, _ in batch[index + 1 :])
                    break
                if self._unwritten.get(key) is entry:
                    del self._unwritten[key]
            written += 1
        return written

    def _write_now(self, record: JobRecord, ttl: float | None) -> bool:
        def operation() -> bool:
            self.store.set(_keys.job_key(record.supervision_id), record.to_json(), ttl)
            for check, deadline in (
                ("stuck", record.stuck_deadline),
                ("timeout", record.timeout_deadline),
            ):
                name = _keys.member(record.supervision_id, check)
                if deadline is None:
                    self.store.unschedule(_keys.DEADLINES, name)
                else:
                    self.store.schedule(_keys.DEADLINES, name, deadline)
            return True

        return self._call("write a job record", operation)[0]

    def _keep(self, key: str, entry: _Unwritten) -> None:
        """Keep ``entry`` as the job's unwritten record (the caller holds the lock)."""
        self._unwritten.pop(key, None)
        self._unwritten[key] = entry
        while len(self._unwritten) > PENDING_LIMIT:
            del self._unwritten[next(iter(self._unwritten))]

    def _flush_soon(self) -> None:
        """Write the kept records: in the background when there is a timer, else now."""
        if self._background:
            with self._lock:
                self._arm_timer(0.0)
        else:
            self.retry_pending()

    def _arm_timer(self, delay: float) -> None:
        """Start the retry timer unless it runs already (the caller holds the lock)."""
        if not self._background or self._timer is not None or not self._unwritten:
            return
        timer = threading.Timer(delay, self._on_timer)
        timer.daemon = True
        self._timer = timer
        timer.start()

    def _on_timer(self) -> None:
        with self._lock:
            self._timer = None
        self.retry_pending()
        with self._lock:
            if self._unwritten and self._retry_delay:
                self._arm_timer(self._retry_delay)

    def read(self, supervision_id: str) -> JobRecord | None:
        """Read a job's record, or None."""
        text = self.store.get(_keys.job_key(supervision_id))
        return None if text is None else JobRecord.from_json(text)

    def heartbeat(
        self,
        supervision_id: str,
        *,
        progress: tuple[int, int | None] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> JobRecord | None:
        """Record a heartbeat for a job this process does not hold a handle of (the
        ``chaperone heartbeat`` command); return the updated record, None if unknown.
        """
        record = self.read(supervision_id)
        if record is None:
            return None
        if record.state is not JobState.RUNNING:
            return record  # finished: rewriting would drop the record's retention TTL
        changes: dict[str, Any] = {"last_heartbeat": self.clock.timestamp()}
        if metadata:
            changes["metadata"] = {**record.metadata, **metadata}
        if progress is not None:
            changes["progress_current"], changes["progress_total"] = progress
        record = attrs.evolve(record, **changes)
        self.write(record)
        return record

    def close_incidents(self, supervision_id: str) -> tuple[IncidentRef, ...]:
        """Close every open incident of a job; return those this call closed."""
        closed = []
        for key in self.store.keys(_keys.incident_prefix(supervision_id)):
            value = self.store.get(key)
            if value is not None and self.store.delete(key):
                data = json.loads(value)
                closed.append(IncidentRef(type=data["type"], key=data["key"]))
        return tuple(closed)


class Supervision:
    """The handle of one supervised job: ``heartbeat()``, ``progress()``, and its id.

    When the record has memory or CPU limits and is this process's (``record.pid``),
    :meth:`start` samples this process's tree every ``resource_interval`` seconds in a
    background thread, until :meth:`finish`.
    """

    def __init__(
        self,
        supervisor: Supervisor,
        record: JobRecord,
        *,
        resource_interval: float = DEFAULT_INTERVAL,
    ) -> None:
        self._supervisor = supervisor
        self._resource_interval = resource_interval
        self._sampler: ResourceSampler | None = None
        self._clock = supervisor.clock
        self._record = record
        interval = record.heartbeat_interval
        self._flush_interval = flush_interval(interval)
        self._flushed_at = float("-inf")
        self._pending_at = record.started_at
        self._pending: dict[str, Any] = {}
        self._dirty = False
        self._lock = threading.Lock()

    @property
    def supervision_id(self) -> str:
        """The job's id (a uuid4), shown in every alert about it."""
        return self._record.supervision_id

    @property
    def name(self) -> str:
        """The job's name (its class), as alerts show it."""
        return self._record.name

    @property
    def record(self) -> JobRecord:
        """The job's record as this process last knew it."""
        return self._record

    def heartbeat(self, **metadata: Any) -> None:
        """Say the job is alive; ``metadata`` is merged into the job's record."""
        now = self._clock.timestamp()
        with self._lock:
            if metadata:
                self._pending.update(metadata)
            self._dirty = True
            self._pending_at = now
            if now - self._flushed_at < self._flush_interval:
                return
            self._flush(now)

    def progress(self, current: int, total: int | None = None, **metadata: Any) -> None:
        """Report progress (``current`` of ``total``); counts as a heartbeat."""
        with self._lock:
            self._pending["__progress__"] = (current, total)
        self.heartbeat(**metadata)

    def _folded(self) -> JobRecord:
        """The record with the pending heartbeat, progress and metadata in it."""
        changes: dict[str, Any] = {"last_heartbeat": self._pending_at}
        progress = self._pending.get("__progress__")
        if progress is not None:
            changes["progress_current"], changes["progress_total"] = progress
        metadata = {k: v for k, v in self._pending.items() if k != "__progress__"}
        if metadata:
            changes["metadata"] = {**self._record.metadata, **metadata}
        return attrs.evolve(self._record, **changes)

    def _flush(self, now: float) -> None:
        record = self._folded()
        if self._supervisor.write(record):
            self._record = record
            self._pending.clear()
            self._dirty = False
        self._flushed_at = now

    def start(self) -> None:
        """Record the job as running, schedule its checks, and sample its limits if any."""
        self._supervisor.write(self._record)
        record = self._record
        limited = record.memory_limit_mb is not None or record.cpu_limit_percent is not None
        if limited and record.pid == os.getpid() and self._sampler is None:
            self._sampler = ResourceSampler(self._supervisor, record, record.pid)
            self._sampler.start(self._resource_interval)

    def finish(self, error: BaseException | None = None) -> None:
        """Record the end (failed when ``error`` is given), unschedule the checks, and
        resolve any incident the job had open.
        """
        if self._sampler is not None:
            self._sampler.close()
        now = self._clock.timestamp()
        supervisor = self._supervisor
        written = supervisor._if_up(
            "read the job's record", lambda: supervisor.read(self.supervision_id)
        )
        with self._lock:
            record = self._folded() if self._dirty else self._record
            record = _with_heartbeats_of(record, written)
            failed = error is not None
            record = attrs.evolve(
                record,
                state=JobState.FAILED if failed else JobState.COMPLETED,
                finished_at=now,
                error=None if error is None else _describe(error),
            )
            self._record = record
            self._pending.clear()
            self._dirty = False
        supervisor.write(record, ttl=RETENTION)
        supervisor._if_up(
            "unschedule checks",
            lambda: [
                supervisor.store.unschedule(_keys.DEADLINES, _keys.member(record.supervision_id, c))
                for c in ("stuck", "timeout", "recovery")
            ],
        )
        supervisor._if_up(
            "count the job",
            lambda: record_job_finished(
                supervisor.store,
                job_class=record.name,
                duration=record.duration(now),
                failed=failed,
                now=now,
            ),
        )
        resolves = supervisor._if_up(
            "close incidents", lambda: supervisor.close_incidents(record.supervision_id)
        )
        if resolves:
            supervisor.emit(
                JobCompleted(
                    supervision_id=record.supervision_id,
                    job_class=record.name,
                    duration=timedelta(seconds=record.duration(now)),
                    failed=failed,
                    error=record.error,
                    resolves=resolves,
                    occurred_at=self._clock.now(),
                )
            )


def _with_heartbeats_of(record: JobRecord, written: JobRecord | None) -> JobRecord:
    """``record`` plus what others wrote for the job (``chaperone heartbeat`` from a
    helper process): their newer heartbeat and progress, and their metadata keys.
    """
    if written is None or written.supervision_id != record.supervision_id:
        return record
    changes: dict[str, Any] = {"metadata": {**written.metadata, **record.metadata}}
    theirs, ours = written.last_heartbeat, record.last_heartbeat
    if theirs is not None and (ours is None or theirs > ours):
        changes["last_heartbeat"] = theirs
        if written.progress_current is not None:
            changes["progress_current"] = written.progress_current
            changes["progress_total"] = written.progress_total
    return attrs.evolve(record, **changes)


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:_ERROR_TEXT_LIMIT]


_default_supervisor: Supervisor | None = None
_default_lock = threading.Lock()


def default_supervisor() -> Supervisor:
    """The process's supervisor on the configured store (built on first use)."""
    global _default_supervisor
    with _default_lock:
        if _default_supervisor is None:
            from chaperone.config import load_settings
            from chaperone.store import default_store_url, open_store

            settings = load_settings(default_store_url=default_store_url())
            clock = SystemClock()
            store = open_store(
                settings.store_url,
                clock,
                key="CHAPERONE_STORE",
                source=settings.source_of("store.url"),
            )
            _default_supervisor = Supervisor(store, clock)
        return _default_supervisor


class _UnavailableStore:
    """Stands in for a configured store that could not be opened: every operation raises
    a StoreError saying why, which the supervisor logs instead of failing the job.
    """

    url = "unavailable://"

    def __init__(self, error: Exception) -> None:
        self._reason = f"{type(error).__name__}: {error}"

    def __getattr__(self, name: str) -> Callable[..., Any]:
        def unavailable(*args: Any, **kwargs: Any) -> Any:
            raise StoreError(f"the configured store could not be opened ({self._reason})")

        return unavailable


def _default_or_unavailable() -> Supervisor:
    """The default supervisor, or, when the configured store cannot be opened, one whose
    every write fails (and is logged): the job runs unsupervised rather than not at all.
    """
    try:
        return default_supervisor()
    except Exception as exc:
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
    supervisor: Supervisor | None


class supervise:  # noqa: N801 - used like a function: `with supervise(...)`, `@supervise(...)`
    """Supervise a job: a context manager (sync or async) and a decorator (sync or async
    functions). Each use starts a new job with its own supervision id.

    ``timeout`` and ``heartbeat_interval`` take seconds, a timedelta, or "5m"; a job is
    stuck after ``heartbeat_interval * missed_heartbeats`` without a heartbeat. With
    ``memory_limit_mb`` or ``cpu_limit_percent``, this process's tree is sampled every
    ``resource_interval`` in a background thread. An exception leaving the block marks
    the job failed and is re-raised unchanged.
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
        supervisor: Supervisor | None = None,
    ) -> None:
        if missed_heartbeats < 1:
            raise ValueError(f"missed_heartbeats must be at least 1, got {missed_heartbeats}")
        limits = (("memory_limit_mb", memory_limit_mb), ("cpu_limit_percent", cpu_limit_percent))
        for label, limit in limits:
            if limit is not None and limit <= 0:
                raise ValueError(f"{label} must be positive, got {limit!r}")
        self._options = _Options(
            name=name,
            timeout=_seconds(timeout, "timeout"),
            heartbeat_interval=_seconds(heartbeat_interval, "heartbeat_interval"),
            missed_heartbeats=missed_heartbeats,
            memory_limit_mb=memory_limit_mb,
            cpu_limit_percent=cpu_limit_percent,
            resource_interval=_seconds(resource_interval, "resource_interval") or DEFAULT_INTERVAL,
            metadata=dict(metadata or {}),
            supervisor=supervisor,
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
            pid=os.getpid(),
            host=socket.gethostname(),
        )
        job = Supervision(supervisor, record, resource_interval=options.resource_interval)
        job.start()
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
