"""Supervised jobs as people see them: each record with the state the detectors found
(stuck, timed out) beside its own. ``chaperone jobs`` prints them; the web app's pages
show them.
"""

from __future__ import annotations

from chaperone.store import Store
from chaperone.supervision import _keys
from chaperone.supervision._records import JobRecord, JobState

__all__ = ["STATES", "job_state", "list_jobs"]

STATES = ("running", "stuck", "timed_out", "completed", "failed", "abandoned")


def job_state(store: Store, record: JobRecord) -> str:
    """A job's state as ``chaperone jobs`` shows it: its own, or stuck / timed out while
    the monitor holds such an incident open about it.
    """
    if record.state is not JobState.RUNNING:
        return record.state.value
    open_incidents = store.keys(_keys.incident_prefix(record.supervision_id))
    if _keys.incident_key(record.supervision_id, "job_stuck") in open_incidents:
        return "stuck"
    if _keys.incident_key(record.supervision_id, "job_timeout") in open_incidents:
        return "timed_out"
    return "running"


def list_jobs(store: Store, now: float) -> list[dict[str, object]]:
    """Every job record in the store as ``chaperone jobs --json`` prints it, newest first."""
    values = store.get_many(store.keys(_keys.JOB_PREFIX))
    records = sorted(
        (JobRecord.from_json(text) for text in values.values()),
        key=lambda record: record.started_at,
        reverse=True,
    )
    return [record.to_public(now, job_state(store, record)) for record in records]
