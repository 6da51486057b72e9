"""A schedule's state now: up, late, missed, failed or paused."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import attrs

from chaperone.schedules._model import Schedule
from chaperone.schedules._stored import ScheduleFacts, read_facts, read_facts_many
from chaperone.store import Store
from chaperone.supervision._last_run import LastRun

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
    """A schedule with what the store says of it, and the moment its next run is
    expected after. Its state is cheap to tell (one expected time); its full status also
    counts the runs missed, which walks the expected times.
    """

    schedule: Schedule
    facts: ScheduleFacts
    anchor: datetime
    """The last start, or when the schedule was first seen or resumed (the later)."""

    def state(self, now: datetime) -> ScheduleState:
        """How the schedule stands at ``now``, without counting the runs missed."""
        expected = self.schedule.expected_after(self.anchor)
        # missed_count > 0 exactly when the first expected run is past its grace.
        return self._state(expected, expected <= now - self.schedule.grace, now)

    def status(self, now: datetime) -> ScheduleStatus:
        """The schedule's state, next expected run and runs missed at ``now``."""
        expected = self.schedule.expected_after(self.anchor)
        # A run under way is not a missed one (its timeout or max_runtime watches it).
        missed = 0 if self._running else self.schedule.missed_count(self.anchor, now)
        return ScheduleStatus(
            schedule=self.schedule,
            state=self._state(expected, missed > 0, now),
            last_run=self.facts.last_run,
            expected_at=expected,
            missed=missed,
        )

    @property
    def _running(self) -> bool:
        run = self.facts.last_run
        return run is not None and run.state == "running"

    def _state(self, expected: datetime, overdue: bool, now: datetime) -> ScheduleState:
        """The state, given the next expected run and whether a run passed its grace."""
        run = self.facts.last_run
        if self.facts.paused:
            return ScheduleState.PAUSED
        if (overdue and not self._running) or self.facts.missed_claim is not None:
            return ScheduleState.MISSED
        if run is not None and run.state in {"failed", "abandoned"}:
            return ScheduleState.FAILED
        if expected <= now and not self._running:
            return ScheduleState.LATE
        return ScheduleState.UP


def schedule_state(schedule: Schedule, store: Store, now: datetime) -> ScheduleStatus:
    """Read how ``schedule`` stands at ``now``: one ``get_many``, whatever the number of
    jobs and schedules.
    """
    facts = read_facts(store, schedule.job)
    anchor = facts.anchor(store, schedule.job, now)
    return ScheduleReading(schedule=schedule, facts=facts, anchor=anchor).status(now)


def read_schedules(
    schedules: Sequence[Schedule], store: Store, now: datetime
) -> list[ScheduleReading]:
    """Each of ``schedules`` with what the store says of it, in their order: one
    ``get_many`` for them all (and a write for each schedule never seen before).
    """
    facts = read_facts_many(store, [schedule.job for schedule in schedules])
    return [
        ScheduleReading(schedule=schedule, facts=each, anchor=each.anchor(store, schedule.job, now))
        for schedule, each in zip(schedules, facts, strict=True)
    ]


def schedule_states(
    schedules: Sequence[Schedule], store: Store, now: datetime
) -> list[ScheduleStatus]:
    """How each of ``schedules`` stands at ``now``, in their order, read as
    :func:`read_schedules` reads them.
    """
    return [reading.status(now) for reading in read_schedules(schedules, store, now)]
