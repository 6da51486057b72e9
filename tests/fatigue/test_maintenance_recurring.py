"""Recurring maintenance windows (issue 5, item 1): when each occurrence starts and ends.

An occurrence starts on a listed weekday the first moment the local clock reads ``from``
and ends the first moment after that the clock reads ``to`` (the next day when ``to`` is
not after ``from``); a window the clock skips whole starts at the jump and keeps its
length. The property compares the computation with a brute-force reference that walks the
clock minute by minute, in time zones with daylight saving (Berlin, New York, Lord Howe's
half-hour shift, Chatham's odd offsets, Samoa's skipped day), with windows drawn inside
and around the times each change skips or repeats, and the hard cases as fixed examples.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from chaperone.config import RecurringWindow
from chaperone.maintenance import (
    current_occurrence,
    local_instant,
    next_occurrence,
    occurrences,
)

BERLIN = ZoneInfo("Europe/Berlin")
TRANSITIONS = (
    ("Europe/Berlin", datetime(2024, 3, 31, 1, 0, tzinfo=UTC)),  # 02:00 -> 03:00
    ("Europe/Berlin", datetime(2024, 10, 27, 1, 0, tzinfo=UTC)),  # 03:00 -> 02:00
    ("America/New_York", datetime(2024, 3, 10, 7, 0, tzinfo=UTC)),  # 02:00 -> 03:00
    ("America/New_York", datetime(2024, 11, 3, 6, 0, tzinfo=UTC)),  # 02:00 -> 01:00
    ("Australia/Lord_Howe", datetime(2024, 4, 6, 15, 0, tzinfo=UTC)),  # 02:00 -> 01:30
    ("Australia/Lord_Howe", datetime(2024, 10, 5, 15, 30, tzinfo=UTC)),  # 02:00 -> 02:30
    ("Pacific/Chatham", datetime(2024, 9, 28, 14, 0, tzinfo=UTC)),  # 02:45 -> 03:45
    ("America/Santiago", datetime(2024, 9, 8, 4, 0, tzinfo=UTC)),  # 24:00 -> 01:00
    ("Pacific/Apia", datetime(2011, 12, 30, 10, 0, tzinfo=UTC)),  # Fri 30 Dec skipped
    ("UTC", datetime(2024, 6, 12, 12, 0, tzinfo=UTC)),
)
"""Zones with daylight saving (a half-hour shift, odd offsets, a jump at midnight) and
an instant of one of their changes."""
TRICKY_TIMES = tuple(time(hour, minute) for hour in (0, 1, 2, 3) for minute in (0, 15, 30, 45))
"""Local times near the changes."""
MINUTE = timedelta(minutes=1)
Test = TypeVar("Test", bound=Callable[..., None])


def window(
    weekdays: set[int] | frozenset[int],
    start: time,
    end: time,
    zone: ZoneInfo | str = BERLIN,
    name: str = "backup",
) -> RecurringWindow:
    """A recurring window as ``[[alerting.maintenance]]`` would give it."""
    return RecurringWindow(
        name=name,
        weekdays=frozenset(weekdays),
        start=start,
        end=end,
        timezone=zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone),
    )


# -- the brute-force reference -------------------------------------------------------------


def _wall(moment: datetime, zone: ZoneInfo) -> datetime:
    return moment.astimezone(zone).replace(tzinfo=None, fold=0)


def first_reading(target: datetime, zone: ZoneInfo) -> datetime:
    """Walk the UTC minutes and return the first whose wall clock reads at least
    ``target`` (a naive local time). No offset is beyond ±15 h, so the walk starts there.
    """
    moment = target.replace(tzinfo=UTC) - timedelta(hours=15)
    for _ in range(31 * 60):
        if _wall(moment, zone) >= target:
            return moment
        moment += MINUTE
    raise AssertionError(f"the clock of {zone} never read {target}")


def reference(
    rule: RecurringWindow, since: datetime, until: datetime
) -> list[tuple[datetime, datetime]]:
    """The occurrences overlapping ``[since, until)``, by walking the clock; when the clock
    reads neither end before the other (it skipped the whole window), the occurrence runs
    from that first reading for the window's length on the wall clock.
    """
    zone = rule.timezone
    found = []
    day = _wall(since, zone).date() - timedelta(days=2)
    while day <= _wall(until, zone).date():
        if day.weekday() in rule.weekdays:
            end_day = day if rule.end > rule.start else day + timedelta(days=1)
            wall_start = datetime.combine(day, rule.start)
            wall_end = datetime.combine(end_day, rule.end)
            start = first_reading(wall_start, zone)
            end = first_reading(wall_end, zone)
            if end == start:
                end = start + (wall_end - wall_start)
            assert start < end, (day, rule)
            if start < until and end > since:
                found.append((start, end))
        day += timedelta(days=1)
    return found


# -- strategies ----------------------------------------------------------------------------

quarter_hours = st.builds(time, hour=st.integers(0, 23), minute=st.sampled_from([0, 15, 30, 45]))
clock_times = st.one_of(st.sampled_from(TRICKY_TIMES), quarter_hours)


def changed_readings(zone: ZoneInfo, change: datetime) -> tuple[datetime, datetime]:
    """The wall-clock readings ``[low, high)`` that the change at ``change`` skips (the
    clock jumps forward) or shows twice (it falls back); empty when nothing changes.
    """
    before = _wall(change - MINUTE, zone) + MINUTE
    after = _wall(change, zone)
    return min(before, after), max(before, after)


def times_around(zone: ZoneInfo, change: datetime) -> st.SearchStrategy[time]:
    """Clock times, to the minute, inside the readings the change skips or repeats, or up
    to a quarter of an hour either side of them.
    """
    low, high = changed_readings(zone, change)
    minutes = (high - low) // MINUTE
    return st.integers(-15, minutes + 15).map(lambda offset: (low + offset * MINUTE).time())


@attrs.frozen
class Scenario:
    """A recurring window and a moment near a daylight-saving change of its zone."""

    rule: RecurringWindow
    moment: datetime


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    """A window in a zone with daylight saving, often on the day of a change, often with
    one end or both inside what the change skips or repeats, and a moment within three
    days of the change.
    """
    zone_name, change = draw(st.sampled_from(TRANSITIONS))
    zone = ZoneInfo(zone_name)
    around = times_around(zone, change)
    start = draw(st.one_of(around, clock_times, around))
    end = draw(st.one_of(around, clock_times, around).filter(lambda value: value != start))
    change_day = change.astimezone(zone).weekday()
    weekdays = draw(st.frozensets(st.integers(0, 6)))
    weekdays |= draw(st.sampled_from([{change_day}, {(change_day - 1) % 7}, set()]))
    if not weekdays:
        weekdays = frozenset({change_day})
    moment = change + timedelta(minutes=draw(st.integers(-3 * 24 * 60, 3 * 24 * 60)))
    return Scenario(rule=window(weekdays, start, end, zone), moment=moment)


def fixed(weekday: int, start: time, end: time, zone: str, moment: datetime) -> Scenario:
    """A window on one weekday, and the moment to look from."""
    return Scenario(rule=window({weekday}, start, end, zone), moment=moment)


SUNDAY, SATURDAY, FRIDAY = 6, 5, 4
DST_EXAMPLES = (
    # The case hypothesis found: 02:00-02:15 on the night Berlin jumps from 02:00 to 03:00,
    # seen from two days before, was dropped, and no occurrence came within nine days.
    fixed(SUNDAY, time(2), time(2, 15), "Europe/Berlin", datetime(2024, 3, 29, 22, 59, tzinfo=UTC)),
    # Ending at 03:00, what the clock reads right after the jump: skipped whole too.
    fixed(SUNDAY, time(2, 30), time(3), "Europe/Berlin", datetime(2024, 3, 30, tzinfo=UTC)),
    # Starting in the gap, ending after it: from the jump to 03:15, a quarter of an hour.
    fixed(SUNDAY, time(2, 30), time(3, 15), "Europe/Berlin", datetime(2024, 3, 31, tzinfo=UTC)),
    fixed(SUNDAY, time(2, 10), time(2, 40), "America/New_York", datetime(2024, 3, 9, tzinfo=UTC)),
    # Lord Howe skips half an hour (02:00 -> 02:30), Chatham 02:45 -> 03:45.
    fixed(SUNDAY, time(2), time(2, 20), "Australia/Lord_Howe", datetime(2024, 10, 5, tzinfo=UTC)),
    fixed(SUNDAY, time(2, 45), time(3, 30), "Pacific/Chatham", datetime(2024, 9, 28, tzinfo=UTC)),
    # Santiago skips the first hour of Sunday; a window from Saturday 23:30 ends in it.
    fixed(SUNDAY, time(0), time(0, 30), "America/Santiago", datetime(2024, 9, 7, tzinfo=UTC)),
    fixed(
        SATURDAY, time(23, 30), time(0, 30), "America/Santiago", datetime(2024, 9, 7, tzinfo=UTC)
    ),
    # Samoa skipped Friday 30 December 2011 whole: a day-long window of that day.
    fixed(FRIDAY, time(0), time(0), "Pacific/Apia", datetime(2011, 12, 29, tzinfo=UTC)),
    fixed(FRIDAY, time(9), time(17), "Pacific/Apia", datetime(2011, 12, 29, tzinfo=UTC)),
    # Folds: wholly inside the repeated hour, and across it.
    fixed(SUNDAY, time(2), time(2, 45), "Europe/Berlin", datetime(2024, 10, 26, 23, tzinfo=UTC)),
    fixed(SUNDAY, time(2, 30), time(2, 15), "Europe/Berlin", datetime(2024, 10, 26, tzinfo=UTC)),
    fixed(
        SUNDAY, time(1, 15), time(1, 45), "America/New_York", datetime(2024, 11, 3, 5, tzinfo=UTC)
    ),
    fixed(
        SUNDAY, time(1, 40), time(2), "Australia/Lord_Howe", datetime(2024, 4, 6, 14, tzinfo=UTC)
    ),
)
"""Windows a daylight-saving change skips, cuts or repeats, each looked at from before it."""


def dst_examples(**others: object) -> Callable[[Test], Test]:
    """Run a property test on every scenario of ``DST_EXAMPLES`` (with ``others`` for its
    other arguments) before the random search.
    """

    def decorate(test: Test) -> Test:
        for case in reversed(DST_EXAMPLES):
            test = example(scenario=case, **others)(test)
        return test

    return decorate


class TestAgainstTheReference:
    """The occurrence computation agrees with walking the wall clock minute by minute."""

    @given(scenario=scenarios(), hours=st.integers(1, 72))
    @dst_examples(hours=72)
    @settings(max_examples=60)
    def test_occurrences_match(self, scenario: Scenario, hours: int) -> None:
        """occurrences() lists exactly the reference's occurrences over a span."""
        rule, since = scenario.rule, scenario.moment
        until = since + timedelta(hours=hours)
        found = [(item.start, item.end) for item in occurrences(rule, since, until)]
        assert found == reference(rule, since, until)

    @given(scenario=scenarios(), offsets=st.lists(st.integers(-2000, 2000), max_size=20))
    @dst_examples(offsets=[0, 60, 24 * 60])
    @settings(max_examples=60)
    def test_current_occurrence_matches(self, scenario: Scenario, offsets: list[int]) -> None:
        """At every moment (each reference boundary and a minute either side included), the
        occurrence in force is the reference's.

        The boundaries come from two days either side; the expected occurrences from four,
        since a probe at the edge of one (a minute before its start, at its end) may lie in
        a neighbour beyond those two days.
        """
        rule, around = scenario.rule, scenario.moment
        spans = reference(rule, around - timedelta(days=2), around + timedelta(days=2))
        wider = reference(rule, around - timedelta(days=4), around + timedelta(days=4))
        probes = [around + timedelta(minutes=offset) for offset in offsets]
        for start, end in spans:
            probes += [start - MINUTE, start, end - MINUTE, end]
        for probe in probes:
            expected = [(start, end) for start, end in wider if start <= probe < end]
            occurrence = current_occurrence(rule, probe)
            got = [] if occurrence is None else [(occurrence.start, occurrence.end)]
            assert got == expected[:1], probe

    @given(scenario=scenarios())
    @dst_examples()
    @settings(max_examples=60)
    def test_next_occurrence_matches(self, scenario: Scenario) -> None:
        """next_occurrence() is the reference's first occurrence starting after now."""
        rule, now = scenario.rule, scenario.moment
        spans = reference(rule, now, now + timedelta(days=9))
        later = [span for span in spans if span[0] > now]
        upcoming = next_occurrence(rule, now)
        assert upcoming is not None
        assert (upcoming.start, upcoming.end) == later[0]


class TestExamples:
    """Hand-checked occurrences."""

    def test_weekend_nights_in_berlin(self) -> None:
        """Sat and Sun 02:00-04:00 Berlin: 01:00-03:00 UTC in winter time."""
        rule = window({5, 6}, time(2), time(4))
        found = occurrences(
            rule, datetime(2024, 1, 15, tzinfo=UTC), datetime(2024, 1, 22, tzinfo=UTC)
        )
        assert [(item.start, item.end) for item in found] == [
            (datetime(2024, 1, 20, 1, tzinfo=UTC), datetime(2024, 1, 20, 3, tzinfo=UTC)),
            (datetime(2024, 1, 21, 1, tzinfo=UTC), datetime(2024, 1, 21, 3, tzinfo=UTC)),
        ]
        assert found[0].id == "backup@2024-01-20T02:00+01:00"

    def test_spring_forward_skips_the_start(self) -> None:
        """On 2024-03-31 Berlin's clock jumps from 02:00 to 03:00: a 02:00-04:00 window runs
        from the jump (01:00 UTC) to 04:00 summer time (02:00 UTC), one hour.
        """
        occurrence = current_occurrence(
            window({6}, time(2), time(4)), datetime(2024, 3, 31, 1, 30, tzinfo=UTC)
        )
        assert occurrence is not None
        assert occurrence.start == datetime(2024, 3, 31, 1, tzinfo=UTC)
        assert occurrence.end == datetime(2024, 3, 31, 2, tzinfo=UTC)
        assert occurrence.id == "backup@2024-03-31T03:00+02:00"

    def test_a_window_the_clock_skips_whole_is_moved(self) -> None:
        """Sun 02:00-02:15 on the night Berlin jumps from 02:00 to 03:00 runs 03:00-03:15
        summer time, and is the next occurrence seen from the Friday before.
        """
        rule = window({6}, time(2), time(2, 15))
        upcoming = next_occurrence(rule, datetime(2024, 3, 29, 22, 59, tzinfo=UTC))
        assert upcoming is not None
        assert upcoming.start == datetime(2024, 3, 31, 1, 0, tzinfo=UTC)
        assert upcoming.end == datetime(2024, 3, 31, 1, 15, tzinfo=UTC)
        assert upcoming.id == "backup@2024-03-31T03:00+02:00"
        assert current_occurrence(rule, datetime(2024, 3, 31, 1, 10, tzinfo=UTC)) == upcoming

    def test_fall_back_takes_the_first_reading(self) -> None:
        """On 2024-10-27 Berlin reads 02:30 twice; the window starts at the first (00:30
        UTC) and a 02:00-02:45 window lasts 45 minutes, not the repeated hour too.
        """
        occurrence = current_occurrence(
            window({6}, time(2), time(2, 45)), datetime(2024, 10, 27, 0, 30, tzinfo=UTC)
        )
        assert occurrence is not None
        assert occurrence.start == datetime(2024, 10, 27, 0, 0, tzinfo=UTC)
        assert occurrence.end - occurrence.start == timedelta(minutes=45)
        assert (
            current_occurrence(
                window({6}, time(2), time(2, 45)), datetime(2024, 10, 27, 1, 30, tzinfo=UTC)
            )
            is None
        )

    def test_crossing_midnight_belongs_to_its_start_day(self) -> None:
        """Friday 22:00 to 02:00: on in the small hours of Saturday, though Saturday is not
        listed, and not on Saturday evening.
        """
        rule = window({4}, time(22), time(2), zone="UTC")
        saturday_night = datetime(2024, 1, 20, 1, 0, tzinfo=UTC)
        occurrence = current_occurrence(rule, saturday_night)
        assert occurrence is not None
        assert occurrence.start == datetime(2024, 1, 19, 22, tzinfo=UTC)
        assert occurrence.end == datetime(2024, 1, 20, 2, tzinfo=UTC)
        assert current_occurrence(rule, datetime(2024, 1, 20, 23, tzinfo=UTC)) is None
        assert current_occurrence(rule, datetime(2024, 1, 20, 2, tzinfo=UTC)) is None

    def test_end_equal_to_start_lasts_a_day(self) -> None:
        """A window whose end is its start runs a whole day: 23 hours across the
        night the clock springs forward.
        """
        rule = window({5}, time(12), time(12))
        spring = current_occurrence(rule, datetime(2024, 3, 30, 12, tzinfo=UTC))
        assert spring is not None
        assert spring.end - spring.start == timedelta(hours=23)

    def test_next_occurrence_skips_the_current_one(self) -> None:
        """During an occurrence, the next one is a week later for a once-a-week window."""
        rule = window({0}, time(9), time(10), zone="UTC")
        upcoming = next_occurrence(rule, datetime(2024, 1, 15, 9, 30, tzinfo=UTC))
        assert upcoming is not None
        assert upcoming.start == datetime(2024, 1, 22, 9, tzinfo=UTC)

    @pytest.mark.parametrize(
        ("day", "clock", "expected"),
        [
            (date(2024, 3, 31), time(2, 30), datetime(2024, 3, 31, 1, 0, tzinfo=UTC)),
            (date(2024, 10, 27), time(2, 30), datetime(2024, 10, 27, 0, 30, tzinfo=UTC)),
            (date(2024, 7, 1), time(2, 30), datetime(2024, 7, 1, 0, 30, tzinfo=UTC)),
        ],
    )
    def test_local_instant(self, day: date, clock: time, expected: datetime) -> None:
        """A skipped time is the jump; a repeated time is its first reading."""
        assert local_instant(day, clock, BERLIN) == expected

    def test_occurrence_ids_are_distinct_per_start(self) -> None:
        """Each occurrence of a week has its own id."""
        rule = window(set(range(7)), time(1), time(2))
        found = occurrences(
            rule, datetime(2024, 1, 15, tzinfo=UTC), datetime(2024, 1, 22, tzinfo=UTC)
        )
        assert len({item.id for item in found}) == len(found) == 7
