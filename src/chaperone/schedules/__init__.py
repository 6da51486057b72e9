"""Schedules: when a job's runs are expected, where schedules are declared, and how each
stands (up, late, missed, failed or paused).
"""

from __future__ import annotations

from chaperone.schedules._model import DEFAULT_GRACE, NICKNAMES, Overlap, Schedule
from chaperone.schedules._state import ScheduleState, ScheduleStatus, schedule_state
from chaperone.schedules._stored import (
    Declaration,
    all_schedules,
    declarations,
    declare,
    is_paused,
    pause,
    resume,
)
from chaperone.supervision._last_run import LastRun, last_run

__all__ = [
    "DEFAULT_GRACE",
    "NICKNAMES",
    "Declaration",
    "LastRun",
    "Overlap",
    "Schedule",
    "ScheduleState",
    "ScheduleStatus",
    "all_schedules",
    "declarations",
    "declare",
    "is_paused",
    "last_run",
    "pause",
    "resume",
    "schedule_state",
]
