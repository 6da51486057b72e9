"""Failed runs as one incident per job name: a run that ends failed and asked for it
(``alert_on_failure``) opens the job's ``job_failed`` incident, and the next successful
run of that name, whoever runs it, resolves it.

Each is reported once, however many processes end runs of the job at once: the opening
is claimed with one set-if-absent on the job's failure key (a failed run while it is open
adds nothing), the resolution with the one delete of that key that finds it.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Final

from chaperone._events import IncidentRef, JobFailed
from chaperone.store import Store
from chaperone.supervision import _keys
from chaperone.supervision._records import JobRecord, JobState

__all__ = ["JOB_FAILED", "close_failure", "report_failure"]

JOB_FAILED: Final = "job_failed"
_NO_ERROR: Final = "the run failed without saying why"


def report_failure(
    store: Store, record: JobRecord, now: float, occurred_at: datetime
) -> JobFailed | None:
    """Open the job's failure incident for ``record`` and return the event that reports
    it; None when the record did not fail or did not ask for it, or when the incident is
    open already (claimed by an earlier failed run, or by another process).
    """
    if record.state is not JobState.FAILED or not record.alert_on_failure:
        return None
    claim = json.dumps(
        {"type": JOB_FAILED, "key": record.name, "since": now, "run": record.supervision_id}
    )
    if not store.set_if_absent(_keys.failure_key(record.name), claim, _keys.INCIDENT_TTL):
        return None
    return JobFailed(
        supervision_id=record.supervision_id,
        job_class=record.name,
        error=record.error or _NO_ERROR,
        duration=timedelta(seconds=max(0.0, record.duration(now))),
        output=record.output,
        occurred_at=occurred_at,
    )


def close_failure(store: Store, job: str) -> IncidentRef | None:
    """Close ``job``'s open failure incident; return it for the one caller that closed
    it, None for every other (and when none is open: one read, no write).
    """
    key = _keys.failure_key(job)
    if store.get(key) is None or not store.delete(key):
        return None
    return IncidentRef(type=JOB_FAILED, key=job)
