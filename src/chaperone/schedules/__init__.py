"""Schedules: when a job's runs are expected, where schedules are declared, and how each
stands (up, late, missed, failed or paused).

The names load with their module when first used: the configuration reads
:class:`Schedule` at every start, and must not pay for the store and the supervision
that the state and the declarations need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chaperone.schedules._model import DEFAULT_GRACE, NICKNAMES, Overlap, Schedule
    from chaperone.schedules._state import (
        ScheduleReading,
        ScheduleState,
        ScheduleStatus,
        read_schedules,
        schedule_state,
        schedule_states,
    )
    from chaperone.schedules._stored import (
        Declaration,
        all_schedules,
        declarations,
        declare,
        forget,
        is_paused,
        pause,
        resume,
        schedule_of,
    )
    from chaperone.supervision._last_run import LastRun, last_run

_HOMES = {
    "DEFAULT_GRACE": "chaperone.schedules._model",
    "NICKNAMES": "chaperone.schedules._model",
    "Overlap": "chaperone.schedules._model",
    "Schedule": "chaperone.schedules._model",
    "ScheduleReading": "chaperone.schedules._state",
    "ScheduleState": "chaperone.schedules._state",
    "ScheduleStatus": "chaperone.schedules._state",
    "read_schedules": "chaperone.schedules._state",
    "schedule_state": "chaperone.schedules._state",
    "schedule_states": "chaperone.schedules._state",
    "Declaration": "chaperone.schedules._stored",
    "all_schedules": "chaperone.schedules._stored",
    "declarations": "chaperone.schedules._stored",
    "declare": "chaperone.schedules._stored",
    "forget": "chaperone.schedules._stored",
    "is_paused": "chaperone.schedules._stored",
    "pause": "chaperone.schedules._stored",
    "resume": "chaperone.schedules._stored",
    "schedule_of": "chaperone.schedules._stored",
    "LastRun": "chaperone.supervision._last_run",
    "last_run": "chaperone.supervision._last_run",
}
"""Each public name and the module it lives in: the one list."""

__all__ = [
    "DEFAULT_GRACE",
    "NICKNAMES",
    "Declaration",
    "LastRun",
    "Overlap",
    "Schedule",
    "ScheduleReading",
    "ScheduleState",
    "ScheduleStatus",
    "all_schedules",
    "declarations",
    "declare",
    "forget",
    "is_paused",
    "last_run",
    "pause",
    "read_schedules",
    "resume",
    "schedule_of",
    "schedule_state",
    "schedule_states",
]


def __getattr__(name: str) -> Any:
    """Load ``name`` from its module when first asked for."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'chaperone.schedules' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public names, for dir() and completion."""
    return sorted(__all__)
