"""HTTP check-ins: jobs on hosts without Python report their start, end and heartbeats
(``POST {prefix}/ping/{job}/start`` and friends), and :func:`check_in` writes the same
records ``chaperone run`` writes, so stuck, timeout and failure detection apply to them.

A check-in job is a name; each of its runs is a job record with a supervision id of its
own. ``start`` opens a run, ``success`` and ``fail`` end one, ``heartbeat`` renews one.
Overlapping runs of one job are told apart by a run id the caller picks (``run``, as
healthchecks.io's ``rid``); without one, a check-in is about the job's latest running
run, and a ``start`` supersedes the running run started without a run id (it ends
abandoned: its end was never reported). No process vouches for a check-in run (its
record's lease is None), so it is never abandoned by the monitor; it ends when it says
so, or is found stuck or timed out.

Check-ins of one job are serialised by a short lock in the store (one set-if-absent),
so two at once never lose a record, whichever backend and however many server
processes there are.
"""

from __future__ import annotations

import enum
import json
import math
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Final

import attrs

from chaperone._clock import Clock
from chaperone._event_codec import encode_event
from chaperone._events import JobCompleted
from chaperone._exceptions import StoreError
from chaperone._secrets import MASKER
from chaperone.store import Store
from chaperone.supervision import _keys
from chaperone.supervision._failures import close_failure, report_failure
from chaperone.supervision._records import JobRecord, JobState
from chaperone.supervision._stats import record_job_finished
from chaperone.supervision._supervisor import close_incidents, store_record

__all__ = [
    "ERROR_LIMIT",
    "JOB_NAME_LIMIT",
    "LOCK_TTL",
    "LOCK_WAIT",
    "MAX_RUNNING_RUNS",
    "RUN_ID_LIMIT",
    "SUPERVISOR",
    "CheckInBusyError",
    "CheckInKind",
    "CheckInOptions",
    "InvalidCheckInError",
    "check_in",
]

JOB_NAME_LIMIT: Final = 100
"""Longest job name a check-in takes."""
RUN_ID_LIMIT: Final = 64
"""Longest run id a check-in takes (a uuid is 36)."""
ERROR_LIMIT: Final = 500
"""A failure's error is cut to this many characters (as a supervised job's is)."""
MAX_RUNNING_RUNS: Final = 100
"""Running runs kept per job; a start beyond supersedes the oldest."""
SUPERVISOR: Final = "HTTP check-in"
"""What a check-in run's record names as its supervisor."""
LOCK_TTL: Final = 30.0
"""Seconds a check-in's lock on its job lasts at most (should its process die)."""
LOCK_WAIT: Final = 5.0
"""Seconds a check-in waits for another check-in of the same job before giving up."""
_LOCK_POLL: Final = 0.005
_SAFE_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")
_SAFE_CHARACTERS: Final = "letters, digits, '.', '_' and '-', starting with a letter or digit"
_FAILED_WITHOUT_ERROR: Final = "the job checked in a failure"
_SUPERSEDED: Final = "superseded: a new run started before this run's end was checked in"
_CHECKS: Final = ("stuck", "timeout", "recovery", "abandon")


class CheckInKind(enum.StrEnum):
    """What a check-in says about a job's run."""

    START = "start"
    SUCCESS = "success"
    FAIL = "fail"
    HEARTBEAT = "heartbeat"


_KINDS: Final = tuple(kind.value for kind in CheckInKind)


def _positive_or_none(
    _instance: object, attribute: attrs.Attribute[float | None], value: float | None
) -> None:
    if value is not None and not (math.isfinite(value) and value > 0):
        raise InvalidCheckInError(
            attribute.name, f"must be a positive number of seconds, got {value!r}"
        )


def _at_least_one(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise InvalidCheckInError(attribute.name, f"must be at least 1, got {value!r}")


@attrs.frozen(kw_only=True)
class CheckInOptions:
    """The limits a run gets when a check-in starts it (seconds, None for none): as
    ``chaperone run --timeout --heartbeat-interval --missed-heartbeats``.
    ``alert_on_failure`` (as ``--alert-on-failure``) also applies to the run a ``fail``
    check-in ends: given on its start or on its failure, the failure raises ``job_failed``.
    """

    timeout: float | None = attrs.field(default=None, validator=_positive_or_none)
    heartbeat_interval: float | None = attrs.field(default=None, validator=_positive_or_none)
    missed_heartbeats: int = attrs.field(default=3, validator=_at_least_one)
    alert_on_failure: bool = False


class InvalidCheckInError(ValueError):
    """A check-in's job name, run id or option is not acceptable; ``field`` names which."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class CheckInBusyError(StoreError):
    """Another check-in of the same job held its lock for longer than :data:`LOCK_WAIT`:
    nothing was written; the check-in can be sent again.
    """


def check_in(
    store: Store,
    clock: Clock,
    job: str,
    kind: CheckInKind,
    *,
    error: str | None = None,
    run: str | None = None,
    options: CheckInOptions = CheckInOptions(),
) -> JobRecord:
    """Record one check-in of ``job`` and return the record of the run it is about.

    ``start`` opens a run (the same ``run`` id again returns the running run: a retried
    request is harmless); ``success`` and ``fail`` end the run (``error`` is the failure's
    text, masked and cut to :data:`ERROR_LIMIT`), or record a run that started and ended
    now when none runs; ``heartbeat`` renews the run's last heartbeat, starting a run when
    none runs. ``options`` apply to the runs a check-in starts. Raises
    InvalidCheckInError for a bad name or run id, CheckInBusyError when other check-ins
    of the job hold it too long, StoreError when the store fails.
    """
    _validate("job", job, JOB_NAME_LIMIT)
    if run is not None:
        _validate("run", run, RUN_ID_LIMIT)
    if kind not in _KINDS:
        raise InvalidCheckInError("kind", f"must be one of {', '.join(_KINDS)}")
    kind = CheckInKind(kind)
    with _locked(store, job):
        runs = _Runs.read(store, job)
        if kind is CheckInKind.START:
            record = _start(store, clock, runs, run, options)
        elif kind is CheckInKind.HEARTBEAT:
            record = _heartbeat(store, clock, runs, run, options)
        else:
            failed = kind is CheckInKind.FAIL
            record = _finish(store, clock, runs, run, options, failed=failed, error=error)
        runs.write(store)
    return record


def _validate(field: str, value: str, limit: int) -> None:
    if not value:
        raise InvalidCheckInError(field, "must not be empty")
    if len(value) > limit:
        raise InvalidCheckInError(field, f"must be at most {limit} characters, got {len(value)}")
    if _SAFE_NAME.match(value) is None:
        raise InvalidCheckInError(field, f"may only hold {_SAFE_CHARACTERS}")


@contextmanager
def _locked(store: Store, job: str) -> Iterator[None]:
    """Hold the job's check-in lock (waiting for it at most :data:`LOCK_WAIT` seconds)."""
    key, token = _keys.checkin_lock_key(job), uuid.uuid4().hex
    deadline = time.monotonic() + LOCK_WAIT
    while not store.set_if_absent(key, token, LOCK_TTL):
        if time.monotonic() >= deadline:
            raise CheckInBusyError(f"other check-ins of job {job!r} are under way; send it again")
        time.sleep(_LOCK_POLL)
    try:
        yield
    finally:
        if store.get(key) == token:  # not taken over after the lock's TTL
            store.delete(key)


@attrs.define
class _Run:
    supervision_id: str
    run: str | None


@attrs.define
class _Runs:
    """A job's running runs, oldest first, as kept under its key while the lock is held."""

    job: str
    entries: list[_Run]

    @classmethod
    def read(cls, store: Store, job: str) -> _Runs:
        text = store.get(_keys.checkin_runs_key(job))
        entries = [] if text is None else [_Run(e["id"], e["run"]) for e in json.loads(text)]
        return cls(job, entries)

    def write(self, store: Store) -> None:
        key = _keys.checkin_runs_key(self.job)
        if not self.entries:
            store.delete(key)
            return
        store.set(key, json.dumps([{"id": e.supervision_id, "run": e.run} for e in self.entries]))

    def current(self, store: Store, run: str | None) -> JobRecord | None:
        """The running record of run ``run`` (the latest running run when None); entries
        whose record ended or vanished are dropped on the way.
        """
        for entry in reversed(list(self.entries)):
            if run is not None and entry.run != run:
                continue
            record = _read(store, entry.supervision_id)
            if record is None or record.state is not JobState.RUNNING:
                self.entries.remove(entry)
                continue
            return record
        return None

    def remove(self, supervision_id: str) -> None:
        self.entries = [e for e in self.entries if e.supervision_id != supervision_id]


def _read(store: Store, supervision_id: str) -> JobRecord | None:
    text = store.get(_keys.job_key(supervision_id))
    return None if text is None else JobRecord.from_json(text)


def _new_record(runs: _Runs, now: float, run: str | None, options: CheckInOptions) -> JobRecord:
    return JobRecord(
        supervision_id=str(uuid.uuid4()),
        name=runs.job,
        started_at=now,
        heartbeat_interval=options.heartbeat_interval,
        missed_heartbeats=options.missed_heartbeats,
        timeout=options.timeout,
        metadata={} if run is None else {"run": run},
        supervisor=SUPERVISOR,
        alert_on_failure=options.alert_on_failure,
    )


def _start(
    store: Store, clock: Clock, runs: _Runs, run: str | None, options: CheckInOptions
) -> JobRecord:
    if run is not None:
        running = runs.current(store, run)
        if running is not None:
            return running  # the same start again (a retried request)
    now = clock.timestamp()
    for entry in [e for e in runs.entries if e.run is None and run is None]:
        _supersede(store, clock, runs, entry.supervision_id)
    while len(runs.entries) >= MAX_RUNNING_RUNS:
        _supersede(store, clock, runs, runs.entries[0].supervision_id)
    record = _new_record(runs, now, run, options)
    runs.entries.append(_Run(record.supervision_id, run))
    # Listed before it is written: should the store fail in between, the next check-in
    # drops an entry without a record, where a record nobody listed would run forever.
    runs.write(store)
    store_record(store, record)
    return record


def _supersede(store: Store, clock: Clock, runs: _Runs, supervision_id: str) -> None:
    """End a running run whose end never came as abandoned (not counted as finished)."""
    runs.remove(supervision_id)
    record = _read(store, supervision_id)
    if record is None or record.state is not JobState.RUNNING:
        return
    now = clock.timestamp()
    ended = attrs.evolve(record, state=JobState.ABANDONED, finished_at=now, error=_SUPERSEDED)
    _record_end(store, clock, ended, count=False)


def _heartbeat(
    store: Store, clock: Clock, runs: _Runs, run: str | None, options: CheckInOptions
) -> JobRecord:
    record = runs.current(store, run)
    if record is None:
        record = _start(store, clock, runs, run, options)
    record = attrs.evolve(record, last_heartbeat=clock.timestamp())
    store_record(store, record)
    return record


def _finish(
    store: Store,
    clock: Clock,
    runs: _Runs,
    run: str | None,
    options: CheckInOptions,
    *,
    failed: bool,
    error: str | None,
) -> JobRecord:
    now = clock.timestamp()
    record = runs.current(store, run)
    if record is None:
        record = _new_record(runs, now, run, options)
    else:
        runs.remove(record.supervision_id)
    ended = attrs.evolve(
        record,
        state=JobState.FAILED if failed else JobState.COMPLETED,
        finished_at=now,
        error=_error_text(error) if failed else None,
        alert_on_failure=record.alert_on_failure or options.alert_on_failure,
    )
    _record_end(store, clock, ended, count=True)
    return ended


def _error_text(error: str | None) -> str:
    """The failure's text as stored: masked (before it is cut, so no secret is cut in
    two and missed), at most :data:`ERROR_LIMIT` characters.
    """
    if error is None or not error.strip():
        return _FAILED_WITHOUT_ERROR
    return MASKER.mask(error)[:ERROR_LIMIT]


def _record_end(store: Store, clock: Clock, record: JobRecord, *, count: bool) -> None:
    """The store work of a run's end, as a supervised job's: the final record kept for
    :data:`~chaperone.supervision._keys.RETENTION`, its checks unscheduled, the run
    counted for the thresholds (``count``), its incidents closed and their resolution
    queued for the monitor; a success also resolves the job's failure incident, and a
    failure that asked for it opens one.
    """
    store_record(store, record, _keys.RETENTION)
    for check in _CHECKS:
        store.unschedule(_keys.DEADLINES, _keys.member(record.supervision_id, check))
    now = clock.timestamp()
    failed = record.state is not JobState.COMPLETED
    if count:
        record_job_finished(
            store, job_class=record.name, duration=record.duration(now), failed=failed, now=now
        )
    resolves = close_incidents(store, record.supervision_id)
    if record.state is JobState.COMPLETED:
        closed = close_failure(store, record.name)
        resolves = (*resolves, closed) if closed else resolves
    if resolves:
        event = JobCompleted(
            supervision_id=record.supervision_id,
            job_class=record.name,
            duration=timedelta(seconds=record.duration(now)),
            failed=failed,
            error=record.error,
            resolves=resolves,
            occurred_at=clock.now(),
        )
        store.push(_keys.EVENTS_QUEUE, encode_event(event))
    failure = report_failure(store, record, now, clock.now())
    if failure is not None:
        store.push(_keys.EVENTS_QUEUE, encode_event(failure))
