"""Schedules on the pages: the schedule list (trouble first, a page at a time), the
overview's schedules that are not up, and a job's schedule.

Sorting trouble first needs every schedule's state: they are read in one read of the
store, whatever their number (:func:`~chaperone.schedules.read_schedules`), and each
told from one expected time; only the rows shown count their missed runs, which walks
the expected times (a minutely cron schedule silent for a week: thousands of steps).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final

import attrs

from chaperone._durations import format_duration
from chaperone.config import Settings
from chaperone.schedules import (
    ScheduleReading,
    ScheduleState,
    ScheduleStatus,
    all_schedules,
    read_schedules,
    schedule_of,
    schedule_state,
)
from chaperone.store import Store
from chaperone.web.pages._moments import Moment, moment

__all__ = [
    "OVERVIEW_SCHEDULES",
    "PAGE_SIZE",
    "STATES",
    "LastRunView",
    "ScheduleRow",
    "ScheduleSummary",
    "SchedulesPage",
    "job_schedule",
    "schedule_row",
    "schedule_summary",
    "schedules_page",
]

STATES: Final = (
    ScheduleState.MISSED,
    ScheduleState.FAILED,
    ScheduleState.LATE,
    ScheduleState.PAUSED,
    ScheduleState.UP,
)
"""The states, trouble first: the order the lists follow."""
PAGE_SIZE: Final = 100
"""Schedules the schedule list shows a page."""
OVERVIEW_SCHEDULES: Final = 50
"""Schedules that are not up the overview lists at most (trouble first)."""
_RANK: Final = {state: rank for rank, state in enumerate(STATES)}


@attrs.frozen
class LastRunView:
    """A schedule's last run: which job record, when it started and ended, how."""

    supervision_id: str
    started: Moment | None
    finished: Moment | None
    state: str


@attrs.frozen
class ScheduleRow:
    """One schedule as the pages show it."""

    job: str
    schedule: str
    """As a person reads it: cron fields, or ``every 15 minutes``."""
    timezone: str | None
    """The cron fields' time zone (None for a period)."""
    grace: str
    state: str
    last_run: LastRunView | None
    expected: Moment | None
    """The next run expected (in the past while late or missed)."""
    missed: int

    @property
    def paused(self) -> bool:
        """Whether the schedule is paused (the page offers Resume, else Pause)."""
        return self.state == ScheduleState.PAUSED


def schedule_row(status: ScheduleStatus, now: datetime) -> ScheduleRow:
    """``status`` as the pages show it, its times seen from ``now``."""
    schedule, run = status.schedule, status.last_run
    return ScheduleRow(
        job=schedule.job,
        schedule=schedule.describe(),
        timezone=schedule.timezone.key if schedule.cron is not None else None,
        grace=format_duration(schedule.grace),
        state=status.state.value,
        last_run=None
        if run is None
        else LastRunView(
            supervision_id=run.supervision_id,
            started=moment(run.started_at, now),
            finished=moment(run.finished_at, now),
            state=run.state,
        ),
        expected=moment(status.expected_at, now),
        missed=status.missed,
    )


@attrs.frozen
class _Read:
    """A schedule as the store says, with its state now (told once, to sort by)."""

    reading: ScheduleReading
    state: ScheduleState

    @property
    def job(self) -> str:
        """The job's name."""
        return self.reading.schedule.job


def _all_read(settings: Settings, store: Store, now: datetime) -> list[_Read]:
    """Every schedule as the store says, trouble first (missed, failed, late, paused,
    up), then by job name.
    """
    readings = read_schedules(all_schedules(settings, store), store, now)
    read = [_Read(reading, reading.state(now)) for reading in readings]
    return sorted(read, key=lambda each: (_RANK[each.state], each.job))


def _rows(read: Sequence[_Read], now: datetime) -> tuple[ScheduleRow, ...]:
    return tuple(schedule_row(each.reading.status(now), now) for each in read)


@attrs.frozen
class SchedulesPage:
    """One page of the schedule list."""

    page: int
    rows: tuple[ScheduleRow, ...]
    has_next: bool
    state: str
    """The state the list is filtered by (``""``: none)."""
    counts: dict[str, int]
    """How many schedules are in each state, every state named, trouble first."""

    @property
    def has_previous(self) -> bool:
        """Whether an earlier page exists."""
        return self.page > 1

    @property
    def total(self) -> int:
        """How many schedules there are."""
        return sum(self.counts.values())


def schedules_page(
    settings: Settings, store: Store, now: datetime, *, state: str = "", page: int = 1
) -> SchedulesPage:
    """Page ``page`` (from 1) of the schedules, trouble first then by job name,
    :data:`PAGE_SIZE` a page; only those in ``state`` when it names one.
    """
    read = _all_read(settings, store, now)
    counts = {each.value: 0 for each in STATES}
    for each in read:
        counts[each.state.value] += 1
    if state in counts:
        read = [each for each in read if each.state == state]
    else:
        state = ""
    start = (page - 1) * PAGE_SIZE
    return SchedulesPage(
        page=page,
        rows=_rows(read[start : start + PAGE_SIZE], now),
        has_next=len(read) > start + PAGE_SIZE,
        state=state,
        counts=counts,
    )


@attrs.frozen
class ScheduleSummary:
    """The overview's schedules: those not up, trouble first, and how many there are."""

    not_up: tuple[ScheduleRow, ...]
    more: int
    """Schedules not up beyond those listed."""
    total: int
    """Every schedule, up or not (0: the overview says nothing of schedules)."""


def schedule_summary(settings: Settings, store: Store, now: datetime) -> ScheduleSummary:
    """The schedules that are late, missed, failed or paused at ``now`` (the first
    :data:`OVERVIEW_SCHEDULES`, trouble first), and the number of schedules.
    """
    read = _all_read(settings, store, now)
    not_up = [each for each in read if each.state != ScheduleState.UP]
    return ScheduleSummary(
        not_up=_rows(not_up[:OVERVIEW_SCHEDULES], now),
        more=max(0, len(not_up) - OVERVIEW_SCHEDULES),
        total=len(read),
    )


def job_schedule(settings: Settings, store: Store, job: str, now: datetime) -> ScheduleRow | None:
    """The schedule of the job named ``job`` and its state, or None when it has none: a
    few reads of the store.
    """
    schedule = schedule_of(settings, store, job)
    return None if schedule is None else schedule_row(schedule_state(schedule, store, now), now)
