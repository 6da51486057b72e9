"""The handle of one supervised job: heartbeats, progress, its start and its end.

A heartbeat in a hot loop costs a clock read and a comparison: heartbeats coalesce, and
the latest is handed to the supervisor at most once per flush interval (a quarter of the
heartbeat interval, at most a second). The supervisor writes it (see
:mod:`chaperone.supervision._supervisor`); the job never waits for the store.
"""

from __future__ import annotations

import os
import threading
from datetime import timedelta
from typing import Any, Final

import attrs

from chaperone import _sanitize
from chaperone._events import JobCompleted
from chaperone._secrets import MASKER, describe
from chaperone.supervision import _keys
from chaperone.supervision._failures import close_failure, report_failure
from chaperone.supervision._records import JobRecord, JobState, flush_interval
from chaperone.supervision._resources import DEFAULT_INTERVAL, ResourceSampler
from chaperone.supervision._stats import record_job_finished
from chaperone.supervision._supervisor import RETENTION, Supervisor

__all__ = ["OUTPUT_LIMIT", "Supervision"]

OUTPUT_LIMIT: Final = 2_000
"""Characters of a failed run's output kept on its record: its end."""
_ERROR_TEXT_LIMIT: Final = 500
_CHECKS: Final = ("stuck", "timeout", "recovery", "abandon")


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
        if record.supervisor is None:
            record = attrs.evolve(record, supervisor=supervisor.description)
        if supervisor.background and record.lease is None:
            record = attrs.evolve(record, lease=supervisor.lease)
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

    def current_record(self) -> JobRecord:
        """The job's record with every heartbeat, progress and metadata seen so far,
        flushed or not.
        """
        with self._lock:
            return self._folded() if self._dirty else self._record

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
        self._supervisor.track(self)
        self._supervisor.write(self._record)
        record = self._record
        limited = record.memory_limit_mb is not None or record.cpu_limit_percent is not None
        if limited and record.pid == os.getpid() and self._sampler is None:
            self._sampler = ResourceSampler(self._supervisor, record, record.pid)
            self._sampler.start(self._resource_interval)

    def finish(
        self, error: BaseException | str | None = None, *, output: str | None = None
    ) -> None:
        """Record the end (failed when ``error`` is given: an exception, or the failure's
        own description such as ``exit status 3``), unschedule the checks, and resolve any
        incident the job had open; a failed run that asked for it opens the job's
        ``job_failed`` incident, a successful one resolves it. ``output`` is the end of
        the run's output, kept (masked, its last :data:`OUTPUT_LIMIT` characters) on a
        failed run's record and its ``job_failed``. With a background supervisor the
        store work is handed to its writer and this returns at once.
        """
        if self._sampler is not None:
            self._sampler.close()
        now = self._clock.timestamp()
        with self._lock:
            record = self._folded() if self._dirty else self._record
            failed = error is not None
            record = attrs.evolve(
                record,
                state=JobState.FAILED if failed else JobState.COMPLETED,
                finished_at=now,
                error=None if error is None else _describe(error),
                output=None if output is None or not failed else _masked_tail(output),
            )
            self._record = record
            self._pending.clear()
            self._dirty = False
        self._supervisor.untrack(self)
        self._supervisor.submit(lambda: self._record_end(record, now))

    def _record_end(self, ended: JobRecord, now: float) -> None:
        """The store work of the end: merge what others wrote, write the final record,
        unschedule the checks, count the job, resolve its incidents.
        """
        supervisor = self._supervisor
        written = supervisor._if_up(
            "read the job's record", lambda: supervisor.read(self.supervision_id)
        )
        record = _with_heartbeats_of(ended, written)
        with self._lock:
            self._record = record
        supervisor.write(record, ttl=RETENTION)
        supervisor._if_up(
            "unschedule checks",
            lambda: [
                supervisor.store.unschedule(_keys.DEADLINES, _keys.member(record.supervision_id, c))
                for c in _CHECKS
            ],
        )
        supervisor._if_up(
            "stop vouching",
            lambda: supervisor.store.delete(_keys.alive_key(record.supervision_id)),
        )
        failed = record.state is JobState.FAILED
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
        if not failed:
            closed = supervisor._if_up(
                "resolve the job's failure", lambda: close_failure(supervisor.store, record.name)
            )
            resolves = (*(resolves or ()), closed) if closed else resolves
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
        if failed and record.alert_on_failure:
            failure = supervisor._if_up(
                "report the failure",
                lambda: report_failure(supervisor.store, record, now, self._clock.now()),
            )
            if failure is not None:
                supervisor.emit(failure)


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


def _masked_tail(output: str) -> str | None:
    """``output`` masked, then cut to its end; None when nothing but white space is left."""
    text = _sanitize.tail(MASKER.mask(output), OUTPUT_LIMIT)
    return text if text.strip() else None


def _describe(error: BaseException | str) -> str:
    text = MASKER.mask(error) if isinstance(error, str) else describe(error)
    return text[:_ERROR_TEXT_LIMIT]
