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

__all__ = ["ScheduleState", "ScheduleStatus", "schedule_state", "schedule_states"]


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


def schedule_state(schedule: Schedule, store: Store, now: datetime) -> ScheduleStatus:
    """Read how ``schedule`` stands at ``now``: a few key reads, whatever the number of
    jobs and schedules.
    """
    run = last_run(store, schedule.job)
    anchor = run.started_at if run is not None else first_seen(store, schedule.job, now)
    return _status(schedule, run, anchor, is_paused(store, schedule.job), now)


def schedule_states(
    schedules: Sequence[Schedule], store: Store, now: datetime
) -> list[ScheduleStatus]:
    """How each of ``schedules`` stands at ``now``, in their order: three reads of the
    store for them all (and a write for each schedule seen for the first time).
    """
    jobs = [schedule.job for schedule in schedules]
    runs = last_runs(store, jobs)
    paused = paused_among(store, jobs)
    seen = first_seen_many(store, [job for job in jobs if job not in runs], now)
    return [
        _status(
            schedule,
            runs.get(schedule.job),
            runs[schedule.job].started_at if schedule.job in runs else seen[schedule.job],
            schedule.job in paused,
            now,
        )
        for schedule in schedules
    ]


def _status(
    schedule: Schedule, run: LastRun | None, anchor: datetime, paused: bool, now: datetime
) -> ScheduleStatus:
    """The state of ``schedule`` at ``now`` from what the store said: its last ``run``,
    the ``anchor`` its next run is expected after, whether it is ``paused``.
    """
    expected = schedule.expected_after(anchor)
    missed = schedule.missed_count(anchor, now)
    if paused:
        state = ScheduleState.PAUSED
    elif missed:
        state = ScheduleState.MISSED
    elif run is not None and run.state in {"failed", "abandoned"}:
        state = ScheduleState.FAILED
    elif expected <= now:
        state = ScheduleState.LATE
    else:
        state = ScheduleState.UP
    return ScheduleStatus(
        schedule=schedule, state=state, last_run=run, expected_at=expected, missed=missed
    )
