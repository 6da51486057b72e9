"""The setting parsers: examples for each, and hypothesis properties for the rules."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaperone.config._parsing import (
    parse_bool,
    parse_choice,
    parse_duration_setting,
    parse_emails,
    parse_http_url,
    parse_int,
    parse_names,
    parse_percent,
    parse_text,
)

TRUE_WORDS = ("true", "1", "yes", "on")
FALSE_WORDS = ("false", "0", "no", "off")
VOCABULARY = {**dict.fromkeys(TRUE_WORDS, True), **dict.fromkeys(FALSE_WORDS, False)}
WHITESPACE = st.text(
    alphabet=st.sampled_from([" ", "\t", "\n", "\r", "\x0b", "\x0c", "\u00a0", "\u2003"]),
    max_size=3,
)
UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


@st.composite
def any_case(draw: st.DrawFn, word: str) -> str:
    """``word`` with each letter in a case hypothesis picks."""
    flips = draw(st.lists(st.booleans(), min_size=len(word), max_size=len(word)))
    return "".join(c.upper() if flip else c for c, flip in zip(word, flips, strict=True))


@st.composite
def padded_vocabulary_word(draw: st.DrawFn) -> tuple[str, bool]:
    """A vocabulary word in any case with whitespace around it, and what it means."""
    word = draw(st.sampled_from(sorted(VOCABULARY)))
    return draw(WHITESPACE) + draw(any_case(word)) + draw(WHITESPACE), VOCABULARY[word]


def _address_part() -> st.SearchStrategy[str]:
    return st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_+", min_size=1, max_size=10)


@st.composite
def email_address(draw: st.DrawFn) -> str:
    """A plain, valid address: local@domain.tld."""
    tld = draw(st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=2, max_size=6))
    return f"{draw(_address_part())}@{draw(_address_part())}.{tld}"


class TestParseBool:
    @given(padded_vocabulary_word())
    def test_vocabulary_in_any_case_and_whitespace(self, case: tuple[str, bool]) -> None:
        """Each vocabulary word reads as its meaning whatever its case and padding."""
        text, meaning = case
        assert parse_bool(text) is meaning

    @given(st.text(max_size=12))
    def test_accepts_exactly_the_vocabulary(self, text: str) -> None:
        """Any text is accepted exactly when, trimmed and lower-cased, it is a vocabulary word."""
        expected = VOCABULARY.get(text.strip().lower())
        if expected is None:
            with pytest.raises(ValueError, match="expected true or false"):
                parse_bool(text)
        else:
            assert parse_bool(text) is expected

    @pytest.mark.parametrize("text", ["maybe", "", "  ", "2", "enabled", "y", "n", "t", "truee"])
    def test_rejects_near_misses(self, text: str) -> None:
        """Words outside the vocabulary, however close, are errors quoting the value."""
        with pytest.raises(ValueError, match=repr(text)):
            parse_bool(text)

    def test_toml_values(self) -> None:
        """TOML booleans pass through, and the integers 1 and 0 read as true and false."""
        assert parse_bool(True) is True
        assert parse_bool(False) is False
        assert parse_bool(1) is True
        assert parse_bool(0) is False
        with pytest.raises(ValueError, match="expected true or false"):
            parse_bool(2)


class TestParseDuration:
    @given(st.integers(min_value=0, max_value=10**8), WHITESPACE, WHITESPACE)
    def test_seconds_round_trip(self, seconds: int, before: str, after: str) -> None:
        """A whole number of seconds, as text (padded) or as a TOML integer, reads back."""
        assert parse_duration_setting(f"{before}{seconds}{after}") == timedelta(seconds=seconds)
        assert parse_duration_setting(seconds) == timedelta(seconds=seconds)

    @given(st.floats(min_value=0, max_value=1e6, allow_nan=False))
    def test_fractional_seconds_round_trip(self, seconds: float) -> None:
        """Fractional seconds read back to the microsecond."""
        parsed = parse_duration_setting(repr(seconds)).total_seconds()
        assert math.isclose(parsed, seconds, abs_tol=1e-6)

    @given(st.integers(min_value=0, max_value=10_000), st.sampled_from(sorted(UNITS)))
    def test_unit_forms_round_trip(self, amount: int, unit: str) -> None:
        """``<n><unit>`` (any case) is n times the unit's length in seconds."""
        expected = timedelta(seconds=amount * UNITS[unit])
        assert parse_duration_setting(f"{amount}{unit}") == expected
        assert parse_duration_setting(f" {amount}{unit.upper()} ") == expected

    @given(
        st.integers(min_value=0, max_value=100),
        st.integers(min_value=0, max_value=59),
        st.integers(min_value=0, max_value=59),
    )
    def test_combined_units(self, hours: int, minutes: int, seconds: int) -> None:
        """``1h30m15s`` adds its parts."""
        text = f"{hours}h{minutes}m{seconds}s"
        assert parse_duration_setting(text) == timedelta(
            hours=hours, minutes=minutes, seconds=seconds
        )

    @pytest.mark.parametrize(
        ("text", "seconds"), [("5m", 300), ("1h", 3600), ("90", 90), ("1h30m", 5400)]
    )
    def test_seed_examples(self, text: str, seconds: int) -> None:
        """The forms the docs show: seconds, minutes, hours."""
        assert parse_duration_setting(text) == timedelta(seconds=seconds)

    @pytest.mark.parametrize(
        "value",
        ["", "   ", "abc", "5x", "m5", "5m-", "-5", "-1m", "nan", "inf", "5 minutes", True, -3],
    )
    def test_rejects_non_durations(self, value: Any) -> None:
        """Text that is not a non-negative duration, negative numbers and booleans are errors."""
        with pytest.raises(ValueError, match="duration"):
            parse_duration_setting(value)

    @pytest.mark.parametrize("value", ["1e300", "99999999999d", 9_000_000_000_000_000_000])
    def test_too_long_is_a_value_error(self, value: Any) -> None:
        """A duration too long for timedelta is a ValueError (a config problem), not a crash."""
        with pytest.raises(ValueError, match="duration"):
            parse_duration_setting(value)


class TestParseEmails:
    @given(st.lists(email_address(), min_size=1, max_size=5))
    def test_valid_addresses_in_order_without_repeats(self, addresses: list[str]) -> None:
        """Comma-separated addresses (padded) come back in order, each once."""
        text = " , ".join(addresses) + ","
        expected = tuple(dict.fromkeys(addresses))
        assert parse_emails(text) == expected
        assert parse_emails(addresses) == expected

    @given(st.text(min_size=1), st.text(min_size=1), email_address())
    def test_rejects_inner_whitespace(self, left: str, right: str, valid: str) -> None:
        """An item with whitespace inside it is rejected, even next to valid addresses."""
        left, right = left.replace(",", ""), right.replace(",", "")
        item = f"{left.strip() or 'a'}\t{right.strip() or 'b'}@example.com"
        with pytest.raises(ValueError, match="is not an e-mail address"):
            parse_emails(f"{valid},{item}")

    @given(st.text(min_size=1).filter(lambda s: "@" not in s and "," not in s and s.strip()))
    def test_rejects_items_without_at_sign(self, item: str) -> None:
        """An item without '@' is rejected, and the message quotes it."""
        with pytest.raises(ValueError, match="is not an e-mail address") as caught:
            parse_emails(item)
        assert repr(item.strip()) in str(caught.value)

    @pytest.mark.parametrize(
        "bad", ["ops", "ops@", "@example.com", "ops@example", "a@b@c.com", "ops@exa mple.com"]
    )
    def test_rejects_malformed(self, bad: str) -> None:
        """Half-addresses and addresses with two '@' are rejected."""
        with pytest.raises(ValueError, match="is not an e-mail address"):
            parse_emails(bad)

    def test_blank_items_are_skipped(self) -> None:
        """Empty pieces between commas are ignored."""
        assert parse_emails(" , ops@example.com ,, ") == ("ops@example.com",)
        assert parse_emails("") == ()


class TestParsePercent:
    @given(st.floats(min_value=0, max_value=100))
    def test_accepts_zero_to_hundred(self, number: float) -> None:
        """Every number from 0 to 100, with or without '%' and padding, reads back."""
        assert parse_percent(repr(number)) == number
        assert parse_percent(f" {number!r}% ") == number
        assert parse_percent(number) == number

    @given(st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: not 0 <= x <= 100))
    def test_rejects_outside_range(self, number: float) -> None:
        """Any finite number outside 0..100 is an error."""
        with pytest.raises(ValueError, match="between 0 and 100"):
            parse_percent(repr(number))

    @pytest.mark.parametrize("value", ["nan", "inf", "-inf", "ten", "", "10%%", True])
    def test_rejects_non_numbers(self, value: Any) -> None:
        """NaN, infinities, words and booleans are errors."""
        with pytest.raises(ValueError, match="between 0 and 100"):
            parse_percent(value)


class TestOtherParsers:
    def test_parse_int(self) -> None:
        """Whole numbers are trimmed; fractions, words, booleans and too-small are errors."""
        assert parse_int(" 42 ") == 42
        assert parse_int(7) == 7
        for bad in ("4.5", "x", "", True):
            with pytest.raises(ValueError, match="whole number"):
                parse_int(bad)
        with pytest.raises(ValueError, match="at least 1"):
            parse_int("0", minimum=1)
        with pytest.raises(ValueError, match="at least 0"):
            parse_int("-1")

    def test_parse_names(self) -> None:
        """Names are trimmed, lower-cased and de-duplicated; odd characters are errors."""
        assert parse_names(" Log , database,log ") == ("log", "database")
        assert parse_names(["Mail", "slack"]) == ("mail", "slack")
        with pytest.raises(ValueError, match="'sl ack'"):
            parse_names("sl ack")
        with pytest.raises(ValueError, match="not a valid name"):
            parse_names("1mail")

    def test_parse_http_url(self) -> None:
        """Absolute http(s) URLs lose their trailing slash; anything else is an error."""
        assert parse_http_url(" https://jobs.example.com/ ") == "https://jobs.example.com"
        for bad in ("jobs.example.com", "ftp://x.org", "https://"):
            with pytest.raises(ValueError, match="http"):
                parse_http_url(bad)

    def test_parse_choice(self) -> None:
        """A choice is trimmed and lower-cased; others are errors listing the choices."""
        parse = parse_choice("auto", "json")
        assert parse(" JSON ") == "json"
        with pytest.raises(ValueError, match="auto, json"):
            parse("xml")

    def test_parse_text(self) -> None:
        """Text is trimmed and must not be blank."""
        assert parse_text("  memory:// ") == "memory://"
        with pytest.raises(ValueError, match="empty"):
            parse_text("   ")


TOML_ONLY_KINDS = st.one_of(
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2).map(lambda v: (v, "a table")),
    st.dates().map(lambda v: (v, "a date")),
    st.times().map(lambda v: (v, "a time")),
    st.datetimes().map(lambda v: (v, "a date-time")),
)
"""TOML values no scalar setting takes, with how an error names their kind."""
PARSERS = [
    parse_bool,
    parse_choice("a", "b"),
    parse_duration_setting,
    parse_emails,
    parse_http_url,
    parse_int,
    parse_names,
    parse_percent,
    parse_text,
]


class TestWrongKinds:
    @given(value_kind=TOML_ONLY_KINDS, parse=st.sampled_from(PARSERS))
    def test_a_table_or_date_is_named_by_its_kind(
        self, value_kind: tuple[Any, str], parse: Any
    ) -> None:
        """Every parser refuses a TOML table, date, time or date-time with a ValueError
        that names its kind and does not quote it.
        """
        value, kind = value_kind
        with pytest.raises(ValueError, match=f"got {kind}$"):
            parse(value)

    @given(items=st.lists(st.text(max_size=5), min_size=1, max_size=3))
    def test_an_array_is_refused_where_one_value_is_expected(self, items: list[str]) -> None:
        """Text, URL, choice, number and duration settings refuse an array."""
        for parse in (parse_text, parse_http_url, parse_choice("a"), parse_int, parse_bool):
            with pytest.raises(ValueError, match=r"got an array$"):
                parse(items)
        with pytest.raises(ValueError, match=r"got an array$"):
            parse_duration_setting(items)

    def test_arrays_hold_only_text(self) -> None:
        """An array of names or addresses holding a table or a number is refused."""
        with pytest.raises(ValueError, match="expected an array of names, got a table"):
            parse_names(["log", {"a": 1}])
        with pytest.raises(ValueError, match="expected an array of e-mail addresses, got a num"):
            parse_emails([1])
