"""One unit for durations: ``timedelta`` in the API, seconds (or "5m", "1h") in config."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

__all__ = ["MAX_DURATION", "format_duration", "format_time", "parse_duration"]

MAX_DURATION = timedelta(days=36500)
"""The longest duration any setting or option takes (100 years): longer ones would
overflow a date once added to the present."""
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def parse_duration(value: str | float | timedelta) -> timedelta:
    """Read a duration: a timedelta, a number of seconds, or text such as ``"90"``, ``"5m"``,
    ``"1h30m"`` or ``"250ms"``.

    Raises ValueError with the offending text when it is not a non-negative duration of
    at most :data:`MAX_DURATION`.
    """
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected a duration such as 300, '5m' or '1h', got {value!r}")
    elif isinstance(value, int | float):
        seconds = float(value)
    else:
        seconds = _parse_text(value)
    if seconds < 0 or seconds != seconds or seconds == float("inf"):
        raise ValueError(f"expected a non-negative finite duration, got {value!r}")
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(
            f"duration too long: at most {MAX_DURATION.days}d (100 years), got {value!r}"
        )
    return timedelta(seconds=seconds)


def _parse_text(text: str) -> float:
    compact = text.strip().lower().replace(" ", "")
    try:
        return float(compact)
    except ValueError:
        pass
    position, total = 0, 0.0
    for match in _PART.finditer(compact):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if not compact or position != len(compact):
        raise ValueError(f"expected a duration such as 300, '5m' or '1h', got {text!r}")
    return total


def format_duration(delta: timedelta) -> str:
    """Say a duration the way a person reads it: ``"30 minutes"``, ``"2 hours 5 minutes"``,
    ``"45 seconds"``.
    """
    seconds = round(delta.total_seconds())
    if seconds < 60:
        return _plural(seconds, "second")
    parts = []
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    for amount, unit in ((days, "day"), (hours, "hour"), (minutes, "minute")):
        if amount:
            parts.append(_plural(amount, unit))
    if seconds and not days:
        parts.append(_plural(seconds, "second"))
    return " ".join(parts)


def _plural(amount: int, unit: str) -> str:
    return f"{amount} {unit}" if amount == 1 else f"{amount} {unit}s"


def format_time(moment: datetime | None) -> str:
    """The seed's timestamp format, in UTC: ``2024-01-15 10:30:00 UTC`` (``never`` for
    None).
    """
    return "never" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")
