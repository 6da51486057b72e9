"""The configuration's schedules as a monitor watches them: read again when the
configuration file changes (a changed schedule takes effect at the next tick, a removed
one stops being watched), and put in the deadline index when they differ from those last
indexed by any monitor.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chaperone._exceptions import ConfigProblem
from chaperone.config._files import read_toml
from chaperone.config._schedules import parse_schedules
from chaperone.schedules import _keys
from chaperone.schedules._model import Schedule
from chaperone.schedules._stored import schedule_data
from chaperone.store import Store

if TYPE_CHECKING:
    from chaperone.config import Settings

__all__ = ["ConfiguredSchedules", "ReloadOutcome"]

_Signature = tuple[int, int] | None

ReloadOutcome = str | None
"""What a reload found wrong (every problem, named by its key), None when nothing was."""


def _signature(path: Path | None) -> _Signature:
    """What changes when the file is written: its modification time and size."""
    if path is None:
        return None
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_mtime_ns, status.st_size


def _read(path: Path) -> tuple[tuple[Schedule, ...], list[ConfigProblem]]:
    """Read the ``[[schedules]]`` of the configuration file ``path`` again."""
    problems: list[ConfigProblem] = []
    table: Any = read_toml(path, problems)
    if path.name == "pyproject.toml":
        tool = table.get("tool", {}) if isinstance(table, dict) else {}
        table = tool.get("chaperone", {}) if isinstance(tool, dict) else {}
    value = table.get("schedules") if isinstance(table, dict) else None
    return parse_schedules(value, str(path), problems), problems


class ConfiguredSchedules:
    """One monitor's view of the configuration's schedules."""

    def __init__(self, settings: Settings) -> None:
        self._path = Path(settings.config_file) if settings.config_file else None
        self._signature = _signature(self._path)
        self._schedules = {schedule.job: schedule for schedule in settings.schedules}
        self._indexed = False

    def get(self, job: str) -> Schedule | None:
        """The configured schedule of ``job``, or None."""
        return self._schedules.get(job)

    def reload(self) -> tuple[bool, ReloadOutcome]:
        """Read the file again if it changed since last read (one ``stat`` when it did
        not). Return whether it was read, and its problems: with any, the schedules read
        before stay in force.
        """
        signature = _signature(self._path)
        if signature == self._signature or self._path is None or signature is None:
            return False, None
        self._signature = signature
        schedules, problems = _read(self._path)
        if problems:
            return True, "; ".join(f"{problem.key}: {problem.message}" for problem in problems)
        current = {schedule.job: schedule for schedule in schedules}
        if current != self._schedules:
            self._schedules = current
            self._indexed = False
        return True, None

    def index(self, store: Store, now: datetime) -> None:
        """Put every configured schedule in the deadline index, due now, unless these very
        schedules were indexed before (by this monitor or another); the jobs with an open
        missed-run incident too, so that a removed schedule's alert resolves now.
        """
        if self._indexed:
            return
        data = [schedule_data(self._schedules[job]) for job in sorted(self._schedules)]
        digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
        if store.get(_keys.CONFIGURED_DIGEST) != digest:
            at = now.timestamp()
            for job in self._schedules:
                store.schedule(_keys.DEADLINES, job, at)
            for key in store.keys(_keys.MISSED_PREFIX):
                store.schedule(_keys.DEADLINES, key.removeprefix(_keys.MISSED_PREFIX), at)
            store.set(_keys.CONFIGURED_DIGEST, digest)
        self._indexed = True
