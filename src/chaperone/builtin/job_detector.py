"""Built-in detector: stuck, timed-out and abandoned jobs, and their recovery.

Jobs are found through the store's deadline index, so a tick costs O(log n) in the
number of supervised jobs, plus the work for those due. Each episode is reported once,
however many monitors run: the report is claimed with one set-if-absent on the
incident's key. Stuck means no heartbeat for ``heartbeat_interval * missed_heartbeats``
of elapsed time, however often the monitor ticks.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

import attrs

from chaperone._clock import utc_from_timestamp
from chaperone._events import Event, JobAbandoned, JobRecovered, JobStuck, JobTimeout
from chaperone._markers import hookimpl
from chaperone.supervision import _keys
from chaperone.supervision._last_run import note_run
from chaperone.supervision._records import JobRecord, JobState

if TYPE_CHECKING:
    from chaperone._runtime import Runtime
    from chaperone.store import Store

__all__ = ["MAX_DUE_PER_TICK", "chaperone_detect", "check_due", "claim_incident"]

ORDER: Final = 10
"""Its place among the built-ins, whose hooks are called lowest first (:mod:`chaperone.builtin`)."""

MAX_DUE_PER_TICK: Final = 1000
"""Checks handled per tick; the rest wait for the next tick."""
_RECOVERY_CHECK: Final = 5.0
"""Longest wait between two looks at a stuck job for renewed heartbeats."""

JOB_STUCK: Final = "job_stuck"
JOB_TIMEOUT: Final = "job_timeout"
JOB_ABANDONED: Final = "job_abandoned"
_CHECKS: Final = ("stuck", "timeout", "recovery", "abandon")


def claim_incident(store: Store, record: JobRecord, alert_type: str, since: float) -> bool:
    """Claim the report of ``record``'s incident of ``alert_type``: True for exactly one
    caller, however many processes find it at once.
    """
    value = json.dumps(
        {
            "type": alert_type,
            "key": record.supervision_id,
            "since": since,
            "heartbeat": record.last_heartbeat,
        }
    )
    key = _keys.incident_key(record.supervision_id, alert_type)
    return store.set_if_absent(key, value, _keys.INCIDENT_TTL)


def check_due(store: Store, now: float, limit: int = MAX_DUE_PER_TICK) -> Iterator[Event]:
    """Handle every check due by ``now``: yield the events found, and reschedule or drop
    each check so that it is not due again before it needs to be.
    """
    for member, at in store.due(_keys.DEADLINES, now, limit):
        supervision_id, check = _keys.split_member(member)
        text = store.get(_keys.job_key(supervision_id))
        record = None if text is None else JobRecord.from_json(text)
        if record is None or record.state is not JobState.RUNNING:
            store.unschedule(_keys.DEADLINES, member)
            continue
        if check == "stuck":
            yield from _check_stuck(store, record, member, now)
        elif check == "timeout":
            yield from _check_timeout(store, record, member, now)
        elif check == "recovery":
            yield from _check_recovery(store, record, member, now)
        elif check == "abandon":
            yield from _check_abandoned(store, record, member, at, now)
        else:
            store.unschedule(_keys.DEADLINES, member)


def _check_stuck(store: Store, record: JobRecord, member: str, now: float) -> Iterator[Event]:
    deadline = record.stuck_deadline
    if deadline is None:
        store.unschedule(_keys.DEADLINES, member)
        return
    if deadline > now:
        store.schedule(_keys.DEADLINES, member, deadline)
        return
    store.unschedule(_keys.DEADLINES, member)
    last_sign_of_life = record.last_heartbeat or record.started_at
    if claim_incident(store, record, JOB_STUCK, now):
        yield JobStuck(
            supervision_id=record.supervision_id,
            job_class=record.name,
            stuck_duration=timedelta(seconds=now - last_sign_of_life),
            last_heartbeat=None
            if record.last_heartbeat is None
            else utc_from_timestamp(record.last_heartbeat),
            occurred_at=utc_from_timestamp(now),
        )
    interval = min(record.heartbeat_interval or _RECOVERY_CHECK, _RECOVERY_CHECK)
    store.schedule(_keys.DEADLINES, _keys.member(record.supervision_id, "recovery"), now + interval)


def _check_timeout(store: Store, record: JobRecord, member: str, now: float) -> Iterator[Event]:
    deadline = record.timeout_deadline
    if deadline is None:
        store.unschedule(_keys.DEADLINES, member)
        return
    if deadline > now:
        store.schedule(_keys.DEADLINES, member, deadline)
        return
    store.unschedule(_keys.DEADLINES, member)
    if claim_incident(store, record, JOB_TIMEOUT, now):
        yield JobTimeout(
            supervision_id=record.supervision_id,
            job_class=record.name,
            timeout=timedelta(seconds=record.timeout or 0.0),
            actual_duration=timedelta(seconds=record.duration(now)),
            occurred_at=utc_from_timestamp(now),
        )


def _check_recovery(store: Store, record: JobRecord, member: str, now: float) -> Iterator[Event]:
    key = _keys.incident_key(record.supervision_id, JOB_STUCK)
    text = store.get(key)
    if text is None:
        store.unschedule(_keys.DEADLINES, member)
        return
    stuck_at_heartbeat = json.loads(text).get("heartbeat")
    resumed = record.last_heartbeat is not None and (
        stuck_at_heartbeat is None or record.last_heartbeat > stuck_at_heartbeat
    )
    if not resumed:
        interval = min(record.heartbeat_interval or _RECOVERY_CHECK, _RECOVERY_CHECK)
        store.schedule(_keys.DEADLINES, member, now + interval)
        return
    store.unschedule(_keys.DEADLINES, member)
    if store.delete(key):
        yield JobRecovered(
            supervision_id=record.supervision_id,
            job_class=record.name,
            recovered_from=JOB_STUCK,
            reason="heartbeats resumed",
            occurred_at=utc_from_timestamp(now),
        )


def _check_abandoned(
    store: Store, record: JobRecord, member: str, at: float, now: float
) -> Iterator[Event]:
    """A running job whose supervising process stopped vouching for it ends abandoned."""
    lease = record.lease or _keys.DEFAULT_LEASE
    if store.get(_keys.alive_key(record.supervision_id)) is not None:
        store.schedule(_keys.DEADLINES, member, now + lease / 3)  # vouched: look again later
        return
    store.unschedule(_keys.DEADLINES, member)
    if not claim_incident(store, record, JOB_ABANDONED, now):
        return
    last_seen = at - lease
    supervisor = record.supervisor or f"pid {record.pid} on {record.host}"
    abandoned = attrs.evolve(
        record,
        state=JobState.ABANDONED,
        finished_at=now,
        error=f"abandoned: {supervisor} stopped vouching for the job at "
        f"{utc_from_timestamp(last_seen):%Y-%m-%d %H:%M:%S} UTC",
    )
    store.set(_keys.job_key(record.supervision_id), abandoned.to_json(), _keys.RETENTION)
    note_run(store, abandoned)
    for check in _CHECKS:
        store.unschedule(_keys.DEADLINES, _keys.member(record.supervision_id, check))
    yield JobAbandoned(
        supervision_id=record.supervision_id,
        job_class=record.name,
        supervisor=supervisor,
        last_seen=utc_from_timestamp(last_seen),
        occurred_at=utc_from_timestamp(now),
    )


@hookimpl
def chaperone_detect(runtime: Runtime, now: datetime) -> list[Event]:
    """Report jobs that went stuck or timed out, and stuck jobs that recovered."""
    return list(check_due(runtime.store, now.timestamp()))
