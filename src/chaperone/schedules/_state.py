"""A schedule's state now: up, late, missed, failed or paused."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import attrs

from chaperone.schedules._model import Schedule
from chaperone.schedules._stored import first_seen, first_seen_many, is_paused, paused_among
from chaperone.store import Store
from chaperone.supervision._last_run import LastRun, last_run, last_runs

__all__ = [
    "ScheduleReading",
    "ScheduleState",
    "ScheduleStatus",
    "read_schedules",
    "schedule_state",
    "schedule_states",
]


class ScheduleState(enum.StrEnum):
    """How a schedule stands. When several hold, the first of paused, missed, failed,
    late, up is said: a missed run is news even after a failed one.
    """

    UP = "up"
    """The next run is not due yet (or a run is under way)."""
    LATE = "late"
    """The expected run has not started, but its grace has not run out."""
    MISSED = "missed"
    """The expected run has not started by its expected time plus grace."""
    FAILED = "failed"
    """The last run ended failed (or abandoned)."""
    PAUSED = "paused"


@attrs.frozen(kw_only=True)
class ScheduleStatus:
    """A schedule, its state, its last run and the run expected next."""

    schedule: Schedule
    state: ScheduleState
    last_run: LastRun | None
    expected_at: datetime
    """The first run expected after the last start (or after the schedule was first seen):
    in the past while late or missed."""
    missed: int
    """How many expected runs have passed their grace since the last start."""

    def to_public(self) -> dict[str, Any]:
        """The JSON ``chaperone schedules --json`` prints, times as ISO 8601."""
        schedule = self.schedule
        run = self.last_run
        return {
            "job": schedule.job,
            "schedule": schedule.describe(),
            "cron": schedule.cron,
            "every": None if schedule.every is None else schedule.every.total_seconds(),
            "timezone": schedule.timezone.key,
            "grace": schedule.grace.total_seconds(),
            "state": self.state.value,
            "last_run": None
            if run is None
            else {
                "supervision_id": run.supervision_id,
                "started_at": run.started_at.isoformat(),
                "finished_at": None if run.finished_at is None else run.finished_at.isoformat(),
                "state": run.state,
            },
            "expected_at": self.expected_at.isoformat(),
            "missed": self.missed,
        }


@attrs.frozen(kw_only=True)
class ScheduleReading:
    """What the store says of a schedule: its last run, the moment its next run is
    expected after, and whether it is paused. Its state is cheap to tell (one expected
    time); its full status also counts the runs missed, which walks the expected times.
    """

    schedule: Schedule
    last_run: LastRun | None
    anchor: datetime
    """The last start, or when the schedule was first seen while the job never ran."""
    paused: bool

    def state(self, now: datetime) -> ScheduleState:
        """How the schedule stands at ``now``, without counting the runs missed."""
        return self._state(self.schedule.expected_after(self.anchor), now)

    def status(self, now: datetime) -> ScheduleStatus:
        """The schedule's state, next expected run and runs missed at ``now``."""
        expected = self.schedule.expected_after(self.anchor)
        return ScheduleStatus(
            schedule=self.schedule,
            state=self._state(expected, now),
            last_run=self.last_run,
            expected_at=expected,
            missed=self.schedule.missed_count(self.anchor, now),
        )

    def _state(self, expected: datetime, now: datetime) -> ScheduleState:
        run = self.last_run
        if self.paused:
            return ScheduleState.PAUSED
        if expected <= now - self.schedule.grace:  # a run missed: missed_count > 0
            return ScheduleState.MISSED
        if run is not None and run.state in {"failed", "abandoned"}:
            return ScheduleState.FAILED
        if expected <= now:
            return ScheduleState.LATE
        return ScheduleState.UP


def schedule_state(schedule: Schedule, store: Store, now: datetime) -> ScheduleStatus:
    """Read how ``schedule`` stands at ``now``: a few key reads, whatever the number of
    jobs and schedules.
    """
    run = last_run(store, schedule.job)
    anchor = run.started_at if run is not None else first_seen(store, schedule.job, now)
    reading = ScheduleReading(
        schedule=schedule, last_run=run, anchor=anchor, paused=is_paused(store, schedule.job)
    )
    return reading.status(now)


def read_schedules(
    schedules: Sequence[Schedule], store: Store, now: datetime
) -> list[ScheduleReading]:
    """What the store says of each of ``schedules``, in their order: three reads of the
    store for them all (and a write for each schedule seen for the first time).
    """
    jobs = [schedule.job for schedule in schedules]
    runs = last_runs(store, jobs)
    paused = paused_among(store, jobs)
    seen = first_seen_many(store, [job for job in jobs if job not in runs], now)
    return [
        ScheduleReading(
            schedule=schedule,
            last_run=runs.get(schedule.job),
            anchor=runs[schedule.job].started_at if schedule.job in runs else seen[schedule.job],
            paused=schedule.job in paused,
        )
        for schedule in schedules
    ]


def schedule_states(
    schedules: Sequence[Schedule], store: Store, now: datetime
) -> list[ScheduleStatus]:
    """How each of ``schedules`` stands at ``now``, in their order, read as
    :func:`read_schedules` reads them.
    """
    return [reading.status(now) for reading in read_schedules(schedules, store, now)]
