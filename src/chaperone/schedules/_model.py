"""The schedule model: when a job's runs are expected, and how many were missed.

A schedule is a cron expression (five fields or a nickname) in an IANA time zone, or a
fixed period (``every``). Cron times come from cronsim, the library healthchecks.io
uses, so daylight-saving changes follow its rules: a time the clocks skip runs at the
moment they jump (02:30 on a spring-forward night runs at 03:00), and a time the clocks
repeat runs once, at its first occurrence.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice, takewhile
from typing import Any
from zoneinfo import ZoneInfo

import attrs
from cronsim import CronSim, CronSimError

from chaperone._durations import format_duration, parse_duration

__all__ = [
    "DEFAULT_GRACE",
    "MAX_COUNTED",
    "NICKNAMES",
    "Overlap",
    "Schedule",
    "normalize_cron",
]

DEFAULT_GRACE = timedelta(minutes=5)
"""How late a run may start before it counts as missed, unless the schedule says: long
enough for a loaded host or a cron daemon's minute boundary, short enough that a nightly
job's absence is known within the hour (healthchecks.io's default grace is 1 hour,
Cronitor's 0; 5 minutes sits between and is what Sentry Crons' check-in margin allows)."""
MAX_COUNTED = 10_000
"""The most missed runs :meth:`Schedule.missed_count` counts for a cron schedule (more are
reported as this many): counting walks the expected times one by one."""
NICKNAMES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
"""The nicknames cron understands (``@reboot`` aside: it names no time), as the five
fields they stand for."""
_UTC_ZONE = ZoneInfo("UTC")


class Overlap(enum.StrEnum):
    """What a run that starts while the previous one still runs means."""

    IGNORE = "ignore"
    ALERT = "alert"


def normalize_cron(expression: str) -> str:
    """Return ``expression`` as five cron fields (a nickname replaced by its fields), or
    raise ValueError saying what is wrong with it.
    """
    text = " ".join(expression.split())
    fields = NICKNAMES.get(text.lower(), text)
    if fields.startswith("@"):
        raise ValueError(f"unknown cron nickname {text!r} (use one of {', '.join(NICKNAMES)})")
    if len(fields.split()) != 5:
        raise ValueError(f"expected five cron fields or a nickname such as @daily, got {text!r}")
    try:
        CronSim(fields, datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as exc:
        raise ValueError(f"invalid cron expression {text!r}: {exc}") from None
    return fields


def _cron(value: str | None) -> str | None:
    return None if value is None else normalize_cron(value)


def _positive(
    instance: object, attribute: attrs.Attribute[timedelta | None], value: timedelta | None
) -> None:
    if value is not None and value <= timedelta(0):
        raise ValueError(f"{attribute.name} must be a duration above zero")


def _not_negative(
    instance: object, attribute: attrs.Attribute[timedelta], value: timedelta
) -> None:
    if value < timedelta(0):
        raise ValueError(f"{attribute.name} must not be negative")


@attrs.frozen(kw_only=True)
class Schedule:
    """When runs of the job named ``job`` are expected: ``cron`` in ``timezone``, or one
    ``every`` period after the last start. A run not started ``grace`` after its expected
    time is missed.
    """

    job: str
    cron: str | None = attrs.field(default=None, converter=_cron)
    """Five cron fields (a nickname is stored as the fields it stands for)."""
    timezone: ZoneInfo = _UTC_ZONE
    """The zone the cron fields are read in (``every`` ignores it)."""
    every: timedelta | None = attrs.field(default=None, validator=_positive)
    grace: timedelta = attrs.field(default=DEFAULT_GRACE, validator=_not_negative)
    max_runtime: timedelta | None = attrs.field(default=None, validator=_positive)
    overlap: Overlap = attrs.field(default=Overlap.IGNORE, converter=Overlap)
    alert_on_failure: bool = True

    def __attrs_post_init__(self) -> None:
        if (self.cron is None) == (self.every is None):
            raise ValueError("a schedule needs exactly one of cron and every")

    @classmethod
    def from_text(cls, job: str, text: str, **options: Any) -> Schedule:
        """Build a schedule from the text code and the command line give: cron fields or
        a nickname (``"0 3 * * *"``, ``"@daily"``), or ``"every <duration>"``
        (``"every 15m"``). ``options`` are the other fields (``grace``, ``timezone``...).
        """
        words = text.split()
        if words and words[0].lower() == "every":
            period = parse_duration(" ".join(words[1:]))
            return cls(job=job, every=period, **options)
        return cls(job=job, cron=text, **options)

    def describe(self, *, with_zone: bool = False) -> str:
        """The schedule as a person reads it: its cron fields, or ``every 15 minutes``;
        ``with_zone``: the cron fields followed by their time zone (``0 3 * * *
        (Europe/Berlin)``).
        """
        if self.every is not None:
            return f"every {format_duration(self.every)}"
        return f"{self.cron} ({self.timezone.key})" if with_zone else str(self.cron)

    def expected_after(self, moment: datetime) -> datetime:
        """The first run expected after ``moment`` (UTC): the next cron time strictly
        after it, or ``moment + every`` (``moment`` being the last start).
        """
        if self.every is not None:
            return moment + self.every
        local = moment.astimezone(self.timezone)
        return next(CronSim(str(self.cron), local)).astimezone(UTC)

    def iter_expected(self, since: datetime) -> Iterator[datetime]:
        """Every run expected after ``since``, in order, without end (one cronsim
        iterator for a cron schedule: a few microseconds a run).
        """
        if self.every is None:
            local = since.astimezone(self.timezone)
            for moment in CronSim(str(self.cron), local):
                yield moment.astimezone(UTC)
            return
        moment = since
        while True:
            moment = moment + self.every
            yield moment

    def expected_runs(self, since: datetime, until: datetime) -> list[datetime]:
        """The runs expected after ``since`` and at or before ``until``, in order."""
        return list(takewhile(lambda moment: moment <= until, self.iter_expected(since)))

    def missed_count(self, last_start: datetime, now: datetime) -> int:
        """How many runs expected after ``last_start`` have passed their grace by ``now``
        (at most :data:`MAX_COUNTED` for a cron schedule).
        """
        deadline = now - self.grace
        if deadline <= last_start:
            return 0
        if self.every is not None:
            return int((deadline - last_start) / self.every)
        passed = takewhile(lambda moment: moment <= deadline, self.iter_expected(last_start))
        return sum(1 for _ in islice(passed, MAX_COUNTED))
