"""Overlapping runs: a run of a scheduled job that starts while the job's previous run
still runs, reported when its schedule says ``overlap = "alert"``.

The starting process reads the job's last run before its own start is written: a run
still running and still vouched for by its supervising process is the one overlapped.
The incident is the job's name, claimed with one set-if-absent (so overlaps in a row are
one incident), and resolved when the overlapping run ends.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Final

from chaperone._events import IncidentRef, RunsOverlapped
from chaperone.store import Store
from chaperone.supervision import _keys
from chaperone.supervision._last_run import LastRun, last_run

__all__ = ["JOB_OVERLAP", "close_overlap", "report_overlap", "running_run"]

JOB_OVERLAP: Final = "job_overlap"


def _overlap_key(job: str) -> str:
    return f"overlap:{job}"


def running_run(store: Store, job: str) -> LastRun | None:
    """The run of ``job`` under way now (its last run, running and vouched for), or None."""
    run = last_run(store, job)
    if run is None or run.state != "running":
        return None
    return run if store.get(_keys.alive_key(run.supervision_id)) is not None else None


def report_overlap(
    store: Store, job: str, supervision_id: str, running: LastRun, now: datetime
) -> RunsOverlapped | None:
    """Open ``job``'s overlap incident for the run ``supervision_id`` that started while
    ``running`` runs; the event that reports it, or None when it is open already.
    """
    claim = json.dumps({"type": JOB_OVERLAP, "key": job, "run": supervision_id})
    if not store.set_if_absent(_overlap_key(job), claim, _keys.INCIDENT_TTL):
        return None
    return RunsOverlapped(
        job_class=job,
        supervision_id=supervision_id,
        running_id=running.supervision_id,
        running_since=running.started_at,
        occurred_at=now,
    )


def close_overlap(store: Store, job: str, supervision_id: str) -> IncidentRef | None:
    """Close ``job``'s overlap incident if the run ``supervision_id`` opened it; return it
    for the one caller that closed it.
    """
    key = _overlap_key(job)
    text = store.get(key)
    if text is None or json.loads(text).get("run") != supervision_id or not store.delete(key):
        return None
    return IncidentRef(type=JOB_OVERLAP, key=job)
