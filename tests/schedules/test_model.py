"""The schedule model: expected runs of cron (across daylight-saving changes) and
``every`` schedules, and how many runs a late start missed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import islice
from zoneinfo import ZoneInfo

import pytest
from cronsim import CronSim
from hypothesis import given, settings
from hypothesis import strategies as st

from chaperone.schedules import DEFAULT_GRACE, NICKNAMES, Overlap, Schedule
from chaperone.schedules._model import MAX_COUNTED

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*parts: int) -> datetime:
    """A UTC datetime."""
    return datetime(*parts, tzinfo=UTC)


class TestDaylightSaving:
    def test_spring_forward_runs_when_the_clocks_jump(self) -> None:
        """02:30 does not exist in Berlin on 2026-03-29: cronsim runs it at 03:00 CEST, the
        moment the clocks jump to (01:00 UTC), and at 02:30 CEST the next night.
        """
        schedule = Schedule(job="nightly", cron="30 2 * * *", timezone=BERLIN)
        runs = schedule.expected_runs(utc(2026, 3, 28, 12), utc(2026, 3, 30, 12))
        assert runs == [utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)]
        assert runs[0].astimezone(BERLIN).hour == 3

    def test_fall_back_runs_the_doubled_time_once(self) -> None:
        """01:30 happens twice in New York on 2026-11-01: cronsim runs it once, at the first
        (EDT, 05:30 UTC), not at the second (EST, 06:30 UTC).
        """
        schedule = Schedule(job="nightly", cron="30 1 * * *", timezone=NEW_YORK)
        runs = schedule.expected_runs(utc(2026, 10, 31, 12), utc(2026, 11, 2, 12))
        assert runs == [utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)]

    def test_after_the_first_doubled_time_the_next_is_a_day_later(self) -> None:
        """From the first 01:30 of the fall-back night, the run expected next is the
        following night's, not the repeated 01:30 an hour later.
        """
        schedule = Schedule(job="nightly", cron="30 1 * * *", timezone=NEW_YORK)
        assert schedule.expected_after(utc(2026, 11, 1, 5, 30)) == utc(2026, 11, 2, 6, 30)

    def test_berlin_fall_back_doubles_two_thirty_once(self) -> None:
        """Berlin's clocks go from 03:00 back to 02:00 on 2026-10-25: "30 2 * * *" runs once,
        at the first 02:30 (CEST, 00:30 UTC).
        """
        schedule = Schedule(job="nightly", cron="30 2 * * *", timezone=BERLIN)
        runs = schedule.expected_runs(utc(2026, 10, 24, 12), utc(2026, 10, 25, 12))
        assert runs == [utc(2026, 10, 25, 0, 30)]


class TestCron:
    @pytest.mark.parametrize(("nickname", "fields"), sorted(NICKNAMES.items()))
    def test_nicknames_stand_for_their_fields(self, nickname: str, fields: str) -> None:
        """A nickname is stored as the five fields cron reads it as."""
        assert Schedule(job="j", cron=nickname.upper()).cron == fields

    def test_next_run_is_strictly_after(self) -> None:
        """A moment that is itself a cron time expects the next one, not itself."""
        schedule = Schedule(job="j", cron="0 3 * * *")
        assert schedule.expected_after(utc(2026, 1, 1, 3)) == utc(2026, 1, 2, 3)

    def test_zone_shifts_the_times(self) -> None:
        """Cron fields are read in the schedule's zone: 03:00 Berlin in winter is 02:00 UTC."""
        schedule = Schedule(job="j", cron="0 3 * * *", timezone=BERLIN)
        assert schedule.expected_after(utc(2026, 1, 1, 12)) == utc(2026, 1, 2, 2)

    @pytest.mark.parametrize("text", ["61 * * * *", "* * *", "@reboot", "@fortnightly", ""])
    def test_bad_expressions_are_refused(self, text: str) -> None:
        """A wrong field, a wrong count of fields or an unknown nickname is a ValueError."""
        with pytest.raises(ValueError, match="cron"):
            Schedule(job="j", cron=text)


class TestMissedCount:
    def test_three_periods_late_is_three(self) -> None:
        """A daily job whose last start was three days and a grace ago missed three runs."""
        schedule = Schedule(job="j", cron="0 3 * * *")
        last = utc(2026, 1, 1, 3)
        now = utc(2026, 1, 4, 3) + DEFAULT_GRACE + timedelta(seconds=1)
        assert schedule.missed_count(last, now) == 3

    def test_within_grace_is_not_missed(self) -> None:
        """A run past its expected time but within grace is not counted."""
        schedule = Schedule(job="j", cron="0 3 * * *", grace=timedelta(minutes=10))
        assert schedule.missed_count(utc(2026, 1, 1, 3), utc(2026, 1, 2, 3, 9)) == 0
        assert schedule.missed_count(utc(2026, 1, 1, 3), utc(2026, 1, 2, 3, 10)) == 1

    def test_every_three_periods_late_is_three(self) -> None:
        """An every-15-minutes job silent for 45 minutes and its grace missed three."""
        schedule = Schedule.from_text("j", "every 15m", grace=timedelta(minutes=1))
        last = utc(2026, 1, 1, 3)
        assert schedule.missed_count(last, last + timedelta(minutes=46)) == 3
        assert schedule.missed_count(last, last + timedelta(minutes=45)) == 2

    def test_counting_stops_at_the_cap(self) -> None:
        """A minutely job silent for years counts at most MAX_COUNTED missed runs."""
        schedule = Schedule(job="j", cron="* * * * *")
        assert schedule.missed_count(utc(2020, 1, 1), utc(2026, 1, 1)) == MAX_COUNTED


class TestEvery:
    def test_runs_follow_the_last_start(self) -> None:
        """An every schedule expects its runs one period apart from the anchor."""
        schedule = Schedule.from_text("j", "every 15m")
        assert schedule.every == timedelta(minutes=15)
        assert schedule.expected_runs(utc(2026, 1, 1), utc(2026, 1, 1, 0, 45)) == [
            utc(2026, 1, 1, 0, 15),
            utc(2026, 1, 1, 0, 30),
            utc(2026, 1, 1, 0, 45),
        ]
        assert schedule.describe() == "every 15 minutes"

    def test_from_text_reads_cron_too(self) -> None:
        """Text that does not start with "every" is a cron expression."""
        schedule = Schedule.from_text("j", "@hourly", timezone=BERLIN)
        assert (schedule.cron, schedule.timezone, schedule.every) == ("0 * * * *", BERLIN, None)


class TestValidation:
    def test_needs_exactly_one_form(self) -> None:
        """Neither cron nor every, or both, is refused."""
        with pytest.raises(ValueError, match="exactly one"):
            Schedule(job="j")
        with pytest.raises(ValueError, match="exactly one"):
            Schedule(job="j", cron="@daily", every=timedelta(hours=1))

    def test_durations_must_make_sense(self) -> None:
        """A zero period, a negative grace and a zero max_runtime are refused."""
        with pytest.raises(ValueError, match="every"):
            Schedule(job="j", every=timedelta(0))
        with pytest.raises(ValueError, match="grace"):
            Schedule(job="j", cron="@daily", grace=timedelta(seconds=-1))
        with pytest.raises(ValueError, match="max_runtime"):
            Schedule(job="j", cron="@daily", max_runtime=timedelta(0))

    def test_defaults(self) -> None:
        """Unless said: 5 minutes of grace, overlaps ignored, failures alerted, UTC."""
        schedule = Schedule(job="j", cron="@daily")
        assert schedule.grace == timedelta(minutes=5)
        assert schedule.overlap is Overlap.IGNORE
        assert schedule.alert_on_failure is True
        assert schedule.timezone.key == "UTC"


def _field(low: int, high: int) -> st.SearchStrategy[str]:
    """One cron field: a star, a value, a range, a step or a list."""
    value = st.integers(low, high)
    return st.one_of(
        st.just("*"),
        value.map(str),
        st.tuples(value, value).map(lambda pair: f"{min(pair)}-{max(pair)}"),
        st.integers(1, high - low + 1).map(lambda step: f"*/{step}"),
        st.lists(value, min_size=1, max_size=3, unique=True).map(
            lambda items: ",".join(map(str, sorted(items)))
        ),
    )


CRONS = st.tuples(_field(0, 59), _field(0, 23), _field(1, 28), _field(1, 12), _field(0, 6)).map(
    " ".join
)
MOMENTS = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
)
ZONES = st.sampled_from([UTC, BERLIN, NEW_YORK, ZoneInfo("Australia/Lord_Howe")])


class TestProperties:
    @given(cron=CRONS, moment=MOMENTS, zone=ZONES)
    def test_next_run_is_after_the_moment_and_matches(
        self, cron: str, moment: datetime, zone: ZoneInfo
    ) -> None:
        """For any expression and moment, the next expected run is after the moment, and
        is a time the expression names (or, on a night the clocks skip it, the moment they
        jump to).
        """
        schedule = Schedule(job="j", cron=cron, timezone=zone)
        expected = schedule.expected_after(moment)
        assert expected > moment
        local = expected.astimezone(zone)
        assert local.second == 0
        matches = CronSim(cron, local - timedelta(minutes=1))
        skipped = local.utcoffset() != (local - timedelta(hours=1)).utcoffset()
        assert next(matches) == local or skipped

    @given(
        minutes=st.integers(1, 10_000),
        silent=st.integers(0, 100_000),
        grace=st.integers(0, 1_000),
        moment=MOMENTS,
    )
    def test_every_missed_count_matches_the_expected_runs(
        self, minutes: int, silent: int, grace: int, moment: datetime
    ) -> None:
        """missed_count of an every schedule is the number of expected runs past grace."""
        schedule = Schedule(
            job="j", every=timedelta(minutes=minutes), grace=timedelta(minutes=grace)
        )
        now = moment + timedelta(minutes=silent)
        runs = schedule.expected_runs(moment, now - timedelta(minutes=grace))
        assert schedule.missed_count(moment, now) == len(runs)

    @settings(deadline=None)
    @given(cron=CRONS, moment=MOMENTS, zone=ZONES)
    def test_iterating_follows_each_next_run(
        self, cron: str, moment: datetime, zone: ZoneInfo
    ) -> None:
        """The runs iter_expected walks (one cronsim iterator) are those expected_after
        gives one after the other (a new one each time), clock changes included."""
        schedule = Schedule(job="j", cron=cron, timezone=zone)
        walked = list(islice(schedule.iter_expected(moment), 8))
        stepped = [schedule.expected_after(moment)]
        while len(stepped) < 8:
            stepped.append(schedule.expected_after(stepped[-1]))
        assert walked == stepped
