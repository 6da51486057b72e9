"""Times as the pages show them: UTC ISO 8601 for the record, and "3 min ago" for a
person glancing at a phone.
"""

from __future__ import annotations

from datetime import datetime

import attrs

from chaperone._clock import as_utc, utc_from_timestamp

__all__ = ["Moment", "moment", "relative"]

_UNITS = ((86400, "d"), (3600, "h"), (60, "min"), (1, "s"))


def relative(seconds: float) -> str:
    """``seconds`` before now (negative: after) in the largest whole unit: ``"3 min ago"``,
    ``"in 2 h"``, ``"just now"`` under a second.
    """
    span = abs(seconds)
    if span < 1:
        return "just now"
    for size, unit in _UNITS:
        if span >= size:
            amount = f"{int(span // size)} {unit}"
            return f"{amount} ago" if seconds > 0 else f"in {amount}"
    return "just now"  # pragma: no cover - the loop's last unit takes any span >= 1


@attrs.frozen
class Moment:
    """One point in time for a template: ``iso`` (UTC, to the second) and ``ago``."""

    at: datetime
    iso: str
    ago: str


def moment(value: datetime | float | str | None, now: datetime) -> Moment | None:
    """``value`` (an aware datetime, Unix seconds or ISO 8601 text) as a :class:`Moment`
    seen from ``now``; None for None or text that is no time.
    """
    if value is None:
        return None
    if isinstance(value, str):
        try:
            at = datetime.fromisoformat(value)
        except ValueError:
            return None
        if at.tzinfo is None:
            return None
    elif isinstance(value, datetime):
        at = value
    else:
        at = utc_from_timestamp(value)
    at = as_utc(at)
    return Moment(
        at=at,
        iso=at.replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        ago=relative((now - at).total_seconds()),
    )
