"""When a recurring maintenance window is in force: its occurrences, in UTC.

An occurrence starts on one of the window's weekdays, the first moment the local clock of
its time zone reads ``start``, and ends the first moment after that the clock reads
``end``: the same day, or the next when ``end`` is not after ``start``. Around daylight
saving changes this is what a person reading the wall clock expects: a time the clock
skips (02:30 on the night it jumps from 02:00 to 03:00) is reached at the jump, and a
time the clock shows twice (02:30 on the night it falls back) is taken the first time.

A window the clock skips whole (02:00-02:15 that night: both ends are reached at the
jump) is moved, never dropped: it starts at the jump and lasts as long as on any other
day (03:00-03:15). Cron runs a job of the skipped hour right after the jump; the window
meant to cover it still does.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import attrs

from chaperone.config._settings import RecurringWindow

__all__ = [
    "Occurrence",
    "current_occurrence",
    "local_instant",
    "next_occurrence",
    "occurrences",
]

_ONE_DAY = timedelta(days=1)
_LOOK_BACK_DAYS = 2
"""An occurrence lasts at most a day and a daylight-saving hour: it started at most this
many local days before the day a moment falls on."""
_LOOK_AHEAD_DAYS = 7
"""The next occurrence belongs to one of this many days after today at the latest: every
listed weekday comes again within a week, every listed day has an occurrence (none is
dropped), and only today's can have begun already."""


@attrs.frozen(kw_only=True)
class Occurrence:
    """One occurrence of a recurring window: ``[start, end)`` in UTC."""

    window: RecurringWindow
    start: datetime
    end: datetime

    @property
    def id(self) -> str:
        """``<name>@<local start>``, e.g. ``backup@2024-03-30T02:00+01:00``."""
        local = self.start.astimezone(self.window.timezone)
        return f"{self.window.name}@{local.isoformat(timespec='minutes')}"

    def contains(self, moment: datetime) -> bool:
        """Whether ``moment`` is inside this occurrence."""
        return self.start <= moment < self.end


def local_instant(day: date, clock_time: time, zone: ZoneInfo) -> datetime:
    """The first UTC moment at which the clock of ``zone`` reads ``clock_time`` on
    ``day``, or, when the clock skips that time, the moment it jumps past it.
    """
    naive = datetime.combine(day, clock_time.replace(tzinfo=None, fold=0))
    instant = naive.replace(tzinfo=zone).astimezone(UTC)
    if _local(instant, zone) == naive:
        return instant
    # Skipped: fold=1 reads the time with the offset after the jump, which lands before
    # the jump; fold=0 with the offset before it, which lands after. The jump lies
    # between; find it to the second.
    low = int(naive.replace(tzinfo=zone, fold=1).astimezone(UTC).timestamp())
    high = int(instant.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if _local(datetime.fromtimestamp(middle, UTC), zone) >= naive:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def _local(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None, fold=0)


@lru_cache(maxsize=1024)
def _occurrence_on(window: RecurringWindow, day: date) -> Occurrence | None:
    """The occurrence of ``window`` that starts on ``day``, if any: the same for the same
    arguments (both immutable), so it is remembered; the maintenance filter asks for
    every alert.
    """
    if day.weekday() not in window.weekdays:
        return None
    start = local_instant(day, window.start, window.timezone)
    end_day = day if window.end > window.start else day + _ONE_DAY
    end = local_instant(end_day, window.end, window.timezone)
    if end == start:
        # Both ends fell in one skipped stretch: the window is moved to the jump whole.
        end = start + (datetime.combine(end_day, window.end) - datetime.combine(day, window.start))
    return Occurrence(window=window, start=start, end=end)


def _days_from(first: date) -> Iterator[date]:
    day = first
    while True:
        yield day
        day += _ONE_DAY


def occurrences(window: RecurringWindow, since: datetime, until: datetime) -> list[Occurrence]:
    """Every occurrence of ``window`` that overlaps ``[since, until)``, earliest first."""
    if until <= since:
        return []
    first = since.astimezone(window.timezone).date() - timedelta(days=_LOOK_BACK_DAYS)
    last = until.astimezone(window.timezone).date()
    found = []
    for day in _days_from(first):
        if day > last:
            break
        occurrence = _occurrence_on(window, day)
        if occurrence is not None and occurrence.start < until and occurrence.end > since:
            found.append(occurrence)
    return found


def current_occurrence(window: RecurringWindow, now: datetime) -> Occurrence | None:
    """The occurrence of ``window`` in force at ``now``, if any."""
    today = now.astimezone(window.timezone).date()
    for back in range(_LOOK_BACK_DAYS, -1, -1):
        occurrence = _occurrence_on(window, today - timedelta(days=back))
        if occurrence is not None and occurrence.contains(now):
            return occurrence
    return None


def next_occurrence(window: RecurringWindow, now: datetime) -> Occurrence | None:
    """The first occurrence of ``window`` that starts after ``now`` (None when the window
    names no weekday).
    """
    today = now.astimezone(window.timezone).date()
    for ahead in range(_LOOK_AHEAD_DAYS + 1):
        occurrence = _occurrence_on(window, today + timedelta(days=ahead))
        if occurrence is not None and occurrence.start > now:
            return occurrence
    return None
