"""Read ``[[schedules]]``: each entry one job's schedule, each problem named by its key
(``schedules[2].cron``) so one start-up error lists them all.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from chaperone._exceptions import ConfigProblem
from chaperone.config._fatigue import parse_zone
from chaperone.config._parsing import (
    describe_kind,
    parse_bool,
    parse_choice,
    parse_duration_setting,
    parse_text,
)
from chaperone.schedules._model import DEFAULT_GRACE, Schedule, normalize_cron

__all__ = ["parse_schedules"]

_KEYS = {"job", "cron", "every", "timezone", "grace", "max_runtime", "overlap", "alert_on_failure"}


def _cron(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(
            f"expected a cron expression such as '0 3 * * *', got {describe_kind(value)}"
        )
    return normalize_cron(value)


def _period(value: Any) -> timedelta:
    period = parse_duration_setting(value)
    if not period:
        raise ValueError("expected a duration above zero")
    return period


_PARSERS = {
    "job": parse_text,
    "cron": _cron,
    "every": _period,
    "timezone": parse_zone,
    "grace": parse_duration_setting,
    "max_runtime": _period,
    "overlap": parse_choice("ignore", "alert"),
    "alert_on_failure": parse_bool,
}


def parse_schedules(value: Any, source: str, problems: list[ConfigProblem]) -> tuple[Schedule, ...]:
    """Read the ``[[schedules]]`` entries: ``job``, and ``cron`` (with ``timezone``, UTC
    when unset) or ``every``; optionally ``grace`` (5 minutes when unset),
    ``max_runtime``, ``overlap`` ("ignore" or "alert") and ``alert_on_failure``.
    """
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
        problems.append(
            ConfigProblem("schedules", source, "expected an array of tables ([[schedules]])")
        )
        return ()
    schedules: list[Schedule] = []
    for index, entry in enumerate(value):
        where = f"schedules[{index}]"
        before = len(problems)
        for key in sorted(set(entry) - _KEYS):
            problems.append(ConfigProblem(f"{where}.{key}", source, "unknown setting"))
        parsed: dict[str, Any] = {}
        for key, parse in _PARSERS.items():
            if key not in entry:
                continue
            try:
                parsed[key] = parse(entry[key])
            except ValueError as exc:
                problems.append(ConfigProblem(f"{where}.{key}", source, str(exc)))
        if "job" not in entry:
            problems.append(ConfigProblem(f"{where}.job", source, "is required"))
        if ("cron" in entry) == ("every" in entry):
            problems.append(
                ConfigProblem(f"{where}.cron", source, "set exactly one of cron and every")
            )
        elif "every" in entry and "timezone" in entry:
            problems.append(
                ConfigProblem(f"{where}.timezone", source, "a timezone applies to cron only")
            )
        if len(problems) > before:
            continue
        if any(schedule.job == parsed["job"] for schedule in schedules):
            problems.append(
                ConfigProblem(f"{where}.job", source, f"another schedule is for {parsed['job']!r}")
            )
            continue
        parsed.setdefault("grace", DEFAULT_GRACE)
        schedules.append(Schedule(**parsed))
    return tuple(schedules)
