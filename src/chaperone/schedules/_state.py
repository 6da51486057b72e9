"""A schedule's state now: up, late, missed, failed or paused."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import attrs

from chaperone.schedules._model import Schedule
from chaperone.schedules._stored import read_facts
from chaperone.store import Store
from chaperone.supervision._last_run import LastRun

__all__ = ["ScheduleState", "ScheduleStatus", "schedule_state"]


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
    """Read how ``schedule`` stands at ``now``: one ``get_many``, whatever the number of
    jobs and schedules.
    """
    facts = read_facts(store, schedule.job)
    run = facts.last_run
    anchor = facts.anchor(store, schedule.job, now)
    expected = schedule.expected_after(anchor)
    running = run is not None and run.state == "running"
    # A run under way is not a missed one (its timeout or max_runtime watches it).
    missed = 0 if running else schedule.missed_count(anchor, now)
    if facts.paused:
        state = ScheduleState.PAUSED
    elif missed or facts.missed_claim is not None:
        state = ScheduleState.MISSED
    elif run is not None and run.state in {"failed", "abandoned"}:
        state = ScheduleState.FAILED
    elif expected <= now and not running:
        state = ScheduleState.LATE
    else:
        state = ScheduleState.UP
    return ScheduleStatus(
        schedule=schedule, state=state, last_run=run, expected_at=expected, missed=missed
    )
