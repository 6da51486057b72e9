"""Schedules on the pages: the schedule list (trouble first, a page at a time), the
overview's schedules that are not up, and a job's schedule.

Every schedule's state is read in three reads of the store, whatever their number
(:func:`~chaperone.schedules.schedule_states`): sorting trouble first needs them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final

import attrs

from chaperone._durations import format_duration
from chaperone.config import Settings
from chaperone.schedules import (
    ScheduleState,
    ScheduleStatus,
    all_schedules,
    schedule_of,
    schedule_state,
    schedule_states,
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
    "trouble_first",
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


def trouble_first(statuses: Sequence[ScheduleStatus]) -> list[ScheduleStatus]:
    """``statuses`` by state (missed, failed, late, paused, up), then by job name."""
    return sorted(statuses, key=lambda status: (_RANK[status.state], status.schedule.job))


def _all_states(settings: Settings, store: Store, now: datetime) -> list[ScheduleStatus]:
    return trouble_first(schedule_states(all_schedules(settings, store), store, now))


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
    statuses = _all_states(settings, store, now)
    counts = {each.value: 0 for each in STATES}
    for status in statuses:
        counts[status.state.value] += 1
    if state in counts:
        statuses = [status for status in statuses if status.state == state]
    else:
        state = ""
    start = (page - 1) * PAGE_SIZE
    return SchedulesPage(
        page=page,
        rows=tuple(schedule_row(status, now) for status in statuses[start : start + PAGE_SIZE]),
        has_next=len(statuses) > start + PAGE_SIZE,
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
    statuses = _all_states(settings, store, now)
    not_up = [status for status in statuses if status.state != ScheduleState.UP]
    return ScheduleSummary(
        not_up=tuple(schedule_row(status, now) for status in not_up[:OVERVIEW_SCHEDULES]),
        more=max(0, len(not_up) - OVERVIEW_SCHEDULES),
        total=len(statuses),
    )


def job_schedule(settings: Settings, store: Store, job: str, now: datetime) -> ScheduleRow | None:
    """The schedule of the job named ``job`` and its state, or None when it has none: a
    few reads of the store.
    """
    schedule = schedule_of(settings, store, job)
    return None if schedule is None else schedule_row(schedule_state(schedule, store, now), now)
