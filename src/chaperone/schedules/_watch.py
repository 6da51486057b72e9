"""Missed runs: each watched job's next deadline in the store's deadline index, and what
a monitor does when one comes due.

The index (``schedule-deadlines``) holds one member per watched job, its name, due when
the run expected after its last start passes its grace. A tick asks the index what is
due, so a tick with nothing due is one range read, however many schedules there are.
A member that comes due is looked at again with one ``get_many``:

- a run started since: the member moves to that run's next deadline, nothing is raised;
- a run is under way: no run is missed while it runs (its timeout watches it);
- none started: the job's missed-run incident is claimed with one set-if-absent on
  ``missed:<job>``, so one monitor reports it however many run; :class:`JobMissed` says
  when the first missed run was expected, when the job last ran and how many runs were
  missed (a monitor that comes back three periods late reports one incident of three);
- with the incident open, the member comes back every few seconds: a run started since
  the claim, a pause or the schedule's removal resolves it (:class:`ScheduleRecovered`,
  raised by the one monitor whose delete removed the claim);
- a job with no schedule any more (removed from the configuration, never declared) leaves
  the index.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Final

from chaperone._events import Event, JobMissed, ScheduleRecovered
from chaperone.schedules import _keys
from chaperone.schedules._model import Schedule
from chaperone.schedules._stored import ScheduleFacts, read_facts
from chaperone.store import Store
from chaperone.supervision._last_run import LastRun

__all__ = ["JOB_MISSED", "MAX_DUE_PER_TICK", "RECHECK", "ScheduleLookup", "check_schedules"]

JOB_MISSED: Final = "job_missed"
MAX_DUE_PER_TICK: Final = 1000
"""Schedules looked at per tick; the rest wait for the next tick."""
RECHECK: Final = 5.0
"""Seconds between two looks at a job whose missed-run incident is open."""
_INCIDENT_TTL: Final = 7 * 86400.0
"""A missed-run incident nobody resolves is reported again after a week."""

ScheduleLookup = Callable[[str], Schedule | None]
"""The schedule a job has now (the configuration's, else the declared one), or None."""


def check_schedules(
    store: Store, lookup: ScheduleLookup, now: datetime, limit: int = MAX_DUE_PER_TICK
) -> Iterator[Event]:
    """Look at every schedule due by ``now``: yield the events found, and move each
    member to when it next needs a look (or drop it: a job without a schedule).
    """
    for job, _at in store.due(_keys.DEADLINES, now.timestamp(), limit):
        schedule = lookup(job)
        facts = read_facts(store, job)
        if schedule is None:
            store.unschedule(_keys.DEADLINES, job)
            yield from _resolve(store, job, facts, "its schedule was removed", now)
            continue
        yield from _look(store, schedule, facts, now)


def _look(store: Store, schedule: Schedule, facts: ScheduleFacts, now: datetime) -> Iterator[Event]:
    job = schedule.job
    if facts.paused:
        yield from _resolve(store, job, facts, "its schedule was paused", now)
        _watch_at(store, job, schedule.expected_after(now) + schedule.grace)
        return
    run = facts.last_run
    if facts.missed_claim is not None:
        if run is None or run.started_at.timestamp() <= facts.missed_claim["anchor"]:
            _watch_at(store, job, now + timedelta(seconds=RECHECK))
            return
        started_at = f"{run.started_at:%Y-%m-%d %H:%M:%S} UTC"
        yield from _resolve(store, job, facts, f"a run started at {started_at}", now, run)
    if run is not None and run.state == "running":
        _watch_at(store, job, schedule.expected_after(now) + schedule.grace)
        return
    anchor = facts.anchor(store, job, now)
    deadline = schedule.expected_after(anchor) + schedule.grace
    if deadline > now:
        _watch_at(store, job, deadline)
        return
    _watch_at(store, job, now + timedelta(seconds=RECHECK))
    claim = {"type": JOB_MISSED, "key": job, "anchor": anchor.timestamp(), "since": now.timestamp()}
    if facts.missed_claim is None and store.set_if_absent(
        _keys.missed_key(job), json.dumps(claim), _INCIDENT_TTL
    ):
        yield JobMissed(
            job_class=job,
            schedule=schedule.describe(with_zone=True),
            expected_at=schedule.expected_after(anchor),
            grace=schedule.grace,
            last_run_at=None if run is None else run.started_at,
            last_supervision_id=None if run is None else run.supervision_id,
            missed_count=max(1, schedule.missed_count(anchor, now)),
            occurred_at=now,
        )


def _resolve(
    store: Store,
    job: str,
    facts: ScheduleFacts,
    reason: str,
    now: datetime,
    run: LastRun | None = None,
) -> Iterator[Event]:
    """Close ``job``'s open missed-run incident, reporting it for the one caller whose
    delete removed the claim; ``run`` is the run whose start resolved it.
    """
    if facts.missed_claim is None or not store.delete(_keys.missed_key(job)):
        return
    yield ScheduleRecovered(
        job_class=job,
        reason=reason,
        supervision_id=None if run is None else run.supervision_id,
        occurred_at=now,
    )


def _watch_at(store: Store, job: str, moment: datetime) -> None:
    store.schedule(_keys.DEADLINES, job, moment.timestamp())
