"""Each job name's newest run, kept under ``lastrun:<name>`` when a run starts and ends.

Job records expire a day after their run ends and are keyed by supervision id; a
schedule needs its job's last start (a weekly job's too) in one read, however many
records the store holds.
"""

from __future__ import annotations

import json
from datetime import datetime

import attrs

from chaperone._clock import utc_from_timestamp
from chaperone.store import Store
from chaperone.supervision._keys import last_run_key
from chaperone.supervision._records import JobRecord

__all__ = ["LastRun", "last_run", "note_run", "parse_last_run"]


@attrs.frozen(kw_only=True)
class LastRun:
    """The newest run of a job, as its record said when it started or ended."""

    supervision_id: str
    started_at: datetime
    finished_at: datetime | None
    state: str
    """``running``, ``completed``, ``failed`` or ``abandoned`` (a JobState value)."""


def note_run(store: Store, record: JobRecord) -> None:
    """Write ``record`` as the newest run of its job (on its start and on its end)."""
    data = {
        "supervision_id": record.supervision_id,
        "started_at": record.started_at,
        "finished_at": record.finished_at,
        "state": record.state.value,
    }
    store.set(last_run_key(record.name), json.dumps(data))


def last_run(store: Store, job: str) -> LastRun | None:
    """The newest run of ``job`` noted by :func:`note_run`, or None."""
    return parse_last_run(store.get(last_run_key(job)))


def parse_last_run(text: str | None) -> LastRun | None:
    """Read the value of a ``lastrun:<name>`` key (None for a missing one)."""
    if text is None:
        return None
    data = json.loads(text)
    finished = data["finished_at"]
    return LastRun(
        supervision_id=data["supervision_id"],
        started_at=utc_from_timestamp(data["started_at"]),
        finished_at=None if finished is None else utc_from_timestamp(finished),
        state=data["state"],
    )
