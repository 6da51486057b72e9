"""Durations: ``parse_duration`` reads config ("90", "5m", "1h30m", "250ms"),
``format_duration`` says them as people do ("30 minutes").
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaperone import format_duration, parse_duration
from chaperone._durations import MAX_DURATION

UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
SPOKEN_SECONDS = {"day": 86400, "hour": 3600, "minute": 60, "second": 1}
SPOKEN_PART = re.compile(r"(\d+) (day|hour|minute|second)(s?)")

parts = st.lists(
    st.tuples(st.integers(min_value=0, max_value=999), st.sampled_from(list(UNIT_SECONDS))),
    min_size=1,
    max_size=5,
)


def spoken_seconds(text: str) -> tuple[int, list[str]]:
    """Read ``format_duration``'s output back: total seconds and the units, in order.

    Fails the test when the text is not a sequence of ``<n> <unit>[s]`` parts.
    """
    total, units = 0, []
    pieces = text.split(" ")
    assert len(pieces) % 2 == 0, text
    for index in range(0, len(pieces), 2):
        match = SPOKEN_PART.fullmatch(f"{pieces[index]} {pieces[index + 1]}")
        assert match, text
        amount, unit, plural = int(match[1]), match[2], match[3]
        assert (plural == "") == (amount == 1), f"wrong plural in {text!r}"
        total += amount * SPOKEN_SECONDS[unit]
        units.append(unit)
    return total, units


class TestParseDuration:
    @given(seconds=st.integers(min_value=0, max_value=10**9))
    def test_whole_seconds(self, seconds: int) -> None:
        """A number of seconds, as a number or as text, is that many seconds."""
        expected = timedelta(seconds=seconds)
        assert parse_duration(seconds) == expected
        assert parse_duration(str(seconds)) == expected
        assert parse_duration(f"  {seconds} ") == expected

    @given(seconds=st.floats(min_value=0, max_value=1e6, allow_nan=False))
    def test_fractional_seconds(self, seconds: float) -> None:
        """Fractions of a second are kept to the microsecond."""
        assert parse_duration(seconds) == timedelta(seconds=seconds)
        assert parse_duration(repr(seconds)) == timedelta(seconds=seconds)

    @given(delta=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3650)))
    def test_timedelta_passes_through(self, delta: timedelta) -> None:
        """A non-negative timedelta comes back unchanged."""
        assert parse_duration(delta) == delta

    @given(parts=parts, spaced=st.booleans(), upper=st.booleans())
    def test_units_add_up(self, parts: list[tuple[int, str]], spaced: bool, upper: bool) -> None:
        """``1h30m``-style text is the sum of its parts, whatever the spacing and case."""
        text = (" " if spaced else "").join(f"{amount}{unit}" for amount, unit in parts)
        if upper:
            text = text.upper()
        milliseconds = sum(amount * round(UNIT_SECONDS[unit] * 1000) for amount, unit in parts)
        assert parse_duration(text) == timedelta(milliseconds=milliseconds)

    @given(
        amount=st.decimals(min_value=0, max_value=1000, places=2).map(str),
        unit=st.sampled_from(["s", "m", "h", "d"]),
    )
    def test_decimal_amounts(self, amount: str, unit: str) -> None:
        """A decimal amount with a unit is scaled by the unit."""
        expected = timedelta(seconds=float(amount) * UNIT_SECONDS[unit])
        assert parse_duration(f"{amount}{unit}") == expected

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("90", timedelta(seconds=90)),
            ("5m", timedelta(minutes=5)),
            ("1h", timedelta(hours=1)),
            ("1h30m", timedelta(hours=1, minutes=30)),
            ("250ms", timedelta(milliseconds=250)),
            ("2d", timedelta(days=2)),
            ("1.5h", timedelta(minutes=90)),
            ("0", timedelta(0)),
            ("1H 30M", timedelta(hours=1, minutes=30)),
        ],
    )
    def test_documented_examples(self, text: str, expected: timedelta) -> None:
        """The examples the settings reference gives read as documented."""
        assert parse_duration(text) == expected

    @pytest.mark.parametrize(
        "value",
        [
            "",
            "   ",
            "-5",
            "-5m",
            "5x",
            "m5",
            "5m5",
            "1h-30m",
            "five minutes",
            "nan",
            "inf",
            "1e400",
            -1,
            -0.001,
            math.nan,
            math.inf,
            True,
            timedelta(seconds=-1),
        ],
    )
    def test_rejects_what_is_not_a_non_negative_duration(self, value: object) -> None:
        """Negative, infinite, NaN, boolean or malformed values raise ValueError."""
        with pytest.raises(ValueError, match="duration"):
            parse_duration(value)  # type: ignore[arg-type]

    @given(text=st.text(max_size=20))
    def test_any_text_parses_or_says_what_was_wrong(self, text: str) -> None:
        """Any text gives a non-negative duration or a ValueError quoting it."""
        error: ValueError | None = None
        try:
            result = parse_duration(text)
        except ValueError as exc:
            error = exc
        if error is None:
            assert result >= timedelta(0)
        else:
            assert repr(text) in str(error)

    def test_error_quotes_the_offending_text(self) -> None:
        """The error message shows the text that could not be read."""
        with pytest.raises(ValueError, match="'10 parsecs'"):
            parse_duration("10 parsecs")

    def test_too_long_is_a_value_error(self) -> None:
        """A duration past what timedelta holds is a ValueError, not an OverflowError."""
        with pytest.raises(ValueError, match="duration"):
            parse_duration("999999999999d")

    @given(days=st.integers(min_value=0, max_value=10**12), unit=st.sampled_from(["d", "h"]))
    def test_at_most_a_hundred_years(self, days: int, unit: str) -> None:
        """Up to 36500 days (100 years) is a duration; longer is a ValueError saying so, so
        that no duration overflows a date once added to the present.
        """
        text = f"{days}{unit}"
        seconds = days * UNIT_SECONDS[unit]
        if seconds <= MAX_DURATION.total_seconds():
            assert parse_duration(text) == timedelta(seconds=seconds)
            assert datetime.now(UTC) + parse_duration(text) > datetime.now(UTC) - timedelta(1)
        else:
            with pytest.raises(ValueError, match="too long: at most 36500d"):
                parse_duration(text)

    @pytest.mark.parametrize("value", [["5m"], {"m": 5}, date(1979, 5, 27), None])
    def test_other_types_are_value_errors(self, value: object) -> None:
        """A list, a table, a date or None is a ValueError, not an AttributeError."""
        with pytest.raises(ValueError, match="expected a duration"):
            parse_duration(value)  # type: ignore[arg-type]


class TestFormatDuration:
    @pytest.mark.parametrize(
        ("delta", "expected"),
        [
            (timedelta(minutes=30), "30 minutes"),
            (timedelta(milliseconds=1_800_000), "30 minutes"),
            (timedelta(seconds=45), "45 seconds"),
            (timedelta(seconds=1), "1 second"),
            (timedelta(0), "0 seconds"),
            (timedelta(minutes=1), "1 minute"),
            (timedelta(hours=2, minutes=5), "2 hours 5 minutes"),
            (timedelta(hours=1, seconds=1), "1 hour 1 second"),
            (timedelta(days=1), "1 day"),
            (timedelta(days=3, hours=4, seconds=59), "3 days 4 hours"),
            (timedelta(minutes=5, seconds=30), "5 minutes 30 seconds"),
        ],
    )
    def test_examples(self, delta: timedelta, expected: str) -> None:
        """The seed's "30 minutes", and its neighbours, read as a person would say them."""
        assert format_duration(delta) == expected

    @given(delta=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=400)))
    def test_says_the_rounded_seconds(self, delta: timedelta) -> None:
        """The spoken parts add up to the duration rounded to the second; from a day on,
        the seconds are left out.
        """
        rounded = round(delta.total_seconds())
        said, _ = spoken_seconds(format_duration(delta))
        if rounded >= 86400:
            assert said == rounded - rounded % 60
        else:
            assert said == rounded

    @given(delta=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=400)))
    def test_units_largest_first_each_once_none_zero(self, delta: timedelta) -> None:
        """Units run from days to seconds, each at most once, none said as zero (except
        "0 seconds"), each within its range (under 24 hours, under 60 minutes).
        """
        text = format_duration(delta)
        _, units = spoken_seconds(text)
        order = list(SPOKEN_SECONDS)
        assert units == sorted(set(units), key=order.index)
        if text != "0 seconds":
            assert not re.search(r"\b0 ", text)
        for amount, unit in re.findall(r"(\d+) (hour|minute)", text):
            assert int(amount) < (24 if unit == "hour" else 60)

    @given(minutes=st.integers(min_value=1, max_value=59))
    def test_whole_minutes(self, minutes: int) -> None:
        """Whole minutes under an hour read ``<n> minutes`` (``1 minute``)."""
        expected = "1 minute" if minutes == 1 else f"{minutes} minutes"
        assert format_duration(timedelta(minutes=minutes)) == expected

    @given(seconds=st.integers(min_value=0, max_value=86399))
    def test_parse_reads_back_the_seconds_it_was_given(self, seconds: int) -> None:
        """Formatting whole seconds below a day and reading the words back as config
        units ("2 hours 5 minutes" → "2h5m") gives the same duration.
        """
        text = format_duration(timedelta(seconds=seconds))
        compact = re.sub(r"(\d+) (\w)\w*", r"\1\2", text).replace(" ", "")
        assert parse_duration(compact) == timedelta(seconds=seconds)
