"""The text helpers every channel uses (``chaperone.channels.text``): measures, fitting,
cleaning and escaping, for any text, lone surrogates included.
"""

from __future__ import annotations

import html
import re
import urllib.parse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaperone.channels.text import (
    ELLIPSIS,
    Measure,
    escape_html,
    escape_markdown,
    escape_slack,
    fit,
    link_url,
    multi_line,
    one_line,
    utf8_length,
    utf16_length,
)
from chaperone.testing import strategies

MEASURES: list[Measure] = [len, utf16_length, utf8_length]
ANY_CHARACTER = st.characters(codec=None, exclude_categories=())
ANY_TEXT = st.one_of(st.text(ANY_CHARACTER, max_size=120), strategies.texts(oversized=False))
LIMITS = st.integers(min_value=0, max_value=300)
SURROGATE = re.compile(r"[\ud800-\udfff]")
MARKUP = "*_~`|<["
"""The inline markup of the dialect the Markdown tests use (Discord's)."""
UNESCAPE_MARKDOWN = re.compile(r"\\([!-/:-@\[-`{-~])")
CLUSTERS = (
    "a",
    " ",
    "e\u0301",
    "a\u0300\u0301\u0302",
    "\U0001f469\u200d\U0001f469\u200d\U0001f467",
    "\U0001f44d\U0001f3ff",
    "\U0001f1eb\U0001f1f7",
    "\u2764\ufe0f",
    "\U0001f680",
    "\u05e9",
)
"""Whole user-perceived characters: a cut falls between them, never inside."""


def measure_id(measure: Measure) -> str:
    """The name a parametrised test shows for ``measure``."""
    return getattr(measure, "__name__", "measure")


class TestMeasures:
    """Lengths in UTF-16 code units and UTF-8 bytes, defined for any text."""

    @given(text=ANY_TEXT)
    def test_utf16_length_counts_code_units(self, text: str) -> None:
        """Each character past U+FFFF counts two, any other (a lone surrogate too) one."""
        expected = sum(2 if ord(char) > 0xFFFF else 1 for char in text)
        assert utf16_length(text) == expected

    @given(text=ANY_TEXT)
    def test_utf8_length_counts_bytes_of_the_sent_text(self, text: str) -> None:
        """The bytes of the text with every surrogate made the U+FFFD it is sent as."""
        assert utf8_length(text) == len(SURROGATE.sub("\ufffd", text).encode("utf-8"))

    def test_examples(self) -> None:
        """An emoji is two UTF-16 units and four bytes; a lone surrogate one and three."""
        assert (utf16_length("🚨"), utf8_length("🚨")) == (2, 4)
        assert (utf16_length("\udcff"), utf8_length("\udcff")) == (1, 3)
        assert (utf16_length("é"), utf8_length("é")) == (1, 2)


class TestFit:
    """Fitting text to a limit in each measure, with an ellipsis."""

    @pytest.mark.parametrize("measure", MEASURES, ids=measure_id)
    @settings(max_examples=300)
    @given(text=ANY_TEXT, limit=LIMITS)
    def test_never_exceeds_the_limit(self, measure: Measure, text: str, limit: int) -> None:
        """Whatever the text and the limit, the result is within it."""
        assert measure(fit(text, limit, measure=measure)) <= limit

    @pytest.mark.parametrize("measure", MEASURES, ids=measure_id)
    @given(text=ANY_TEXT, limit=LIMITS)
    def test_is_the_text_when_it_fits(self, measure: Measure, text: str, limit: int) -> None:
        """A text within the limit comes back as it is."""
        if measure(text) <= limit:
            assert fit(text, limit, measure=measure) == text

    @pytest.mark.parametrize("measure", MEASURES, ids=measure_id)
    @given(text=ANY_TEXT, limit=st.integers(min_value=4, max_value=300))
    def test_keeps_a_prefix_when_it_cuts(self, measure: Measure, text: str, limit: int) -> None:
        """A cut text is a start of the cleaned text, then the ellipsis."""
        cleaned = multi_line(text)
        result = fit(cleaned, limit, measure=measure)
        if measure(cleaned) > limit:
            assert result.endswith(ELLIPSIS)
            assert cleaned.startswith(result.removesuffix(ELLIPSIS))

    @given(
        clusters=st.lists(st.sampled_from(CLUSTERS), max_size=40),
        limit=st.integers(min_value=1, max_value=80),
    )
    def test_never_cuts_inside_a_cluster(self, clusters: list[str], limit: int) -> None:
        """Marks stay with their letter, emoji sequences and flags stay whole."""
        text = "".join(clusters)
        kept = fit(text, limit, measure=utf16_length).removesuffix(ELLIPSIS)
        boundaries = {len("".join(clusters[:count])) for count in range(len(clusters) + 1)}
        assert len(kept) in boundaries

    def test_never_splits_a_surrogate_pair(self) -> None:
        """A pair of surrogates (as JSON can give them) is kept or dropped together."""
        text = "a" + "\ud83d\ude80" * 5
        for limit in range(1, 12):
            kept = fit(text, limit, measure=utf16_length).removesuffix(ELLIPSIS)
            assert not kept.endswith("\ud83d"), limit

    def test_examples(self) -> None:
        """Astral characters count two in UTF-16; white space before the ellipsis goes."""
        assert fit("🚨🚨🚨", 5, measure=utf16_length) == "🚨🚨…"
        assert fit("🚨🚨🚨", 5) == "🚨🚨🚨"
        assert fit("trailing space here", 10) == "trailing…"
        assert fit("ab🇫🇷🇩🇪", 5) == "ab🇫🇷…"
        assert fit("café" * 3, 6, measure=utf8_length) == "caf…"
        assert fit("\udcff" * 10, 5, measure=utf16_length) == "\udcff" * 4 + "…"
        assert fit("abc", 0) == ""
        assert fit("abcdef", 2, ellipsis="...") == "ab"

    @given(text=ANY_TEXT, limit=st.integers(min_value=1, max_value=300))
    def test_an_escape_is_never_cut(self, text: str, limit: int) -> None:
        """With an escape, the result fits, unescapes to a start of the text, and is the
        escaped text whole when that fits.
        """
        result = fit(text, limit, measure=utf16_length, escape=escape_slack)
        assert utf16_length(result) <= limit
        escaped = escape_slack(text)
        if utf16_length(escaped) <= limit:
            assert result == escaped
        else:
            assert text.startswith(html.unescape(result.removesuffix(ELLIPSIS)))
        assert not re.search(r"&(?!amp;|lt;|gt;)", result)


class TestCleaning:
    """One-line and multi-line cleaning: valid, printable, idempotent."""

    @given(text=ANY_TEXT)
    def test_one_line_is_one_clean_line(self, text: str) -> None:
        """No line break, control character, lone surrogate or run of spaces is left,
        and cleaning again changes nothing.
        """
        line = one_line(text)
        assert not re.search(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]", line)
        assert "  " not in line
        assert line == line.strip()
        assert one_line(line) == line
        line.encode("utf-8")

    @given(text=ANY_TEXT)
    def test_multi_line_keeps_line_breaks(self, text: str) -> None:
        """Only newlines and tabs of the controls stay, CRLF is a newline, and cleaning
        again changes nothing.
        """
        cleaned = multi_line(text)
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]", cleaned)
        assert multi_line(cleaned) == cleaned
        assert cleaned.count("\n") >= text.count("\r\n")
        assert one_line(cleaned) == one_line(text)

    @given(text=st.text(st.characters(categories=["L", "N", "P", "S"]), max_size=80))
    def test_ordinary_text_is_unchanged(self, text: str) -> None:
        """Printable text of one line comes through both cleanings as it is."""
        assert multi_line(text) == text
        assert one_line(text) == text


class TestEscaping:
    """Slack, Markdown and HTML escaping, and links."""

    @given(text=ANY_TEXT)
    def test_slack_round_trips(self, text: str) -> None:
        """Slack's three characters are entities, and reading them back gives the text."""
        escaped = escape_slack(text)
        assert "<" not in escaped
        assert ">" not in escaped
        assert html.unescape(escaped) == text

    @given(text=ANY_TEXT)
    def test_html_round_trips(self, text: str) -> None:
        """No markup character is left bare, and reading the entities back gives the text."""
        escaped = escape_html(text)
        assert not re.search(r"[<>\"']", escaped)
        assert html.unescape(escaped) == text

    @given(text=st.one_of(ANY_TEXT, st.text("*_\\#>-+1. \n[]()`abc", max_size=60)))
    def test_markdown_round_trips(self, text: str) -> None:
        """Every markup character gets a backslash, and removing the backslashes (as
        Markdown reads them) gives the text back.
        """
        escaped = escape_markdown(text, inline=MARKUP, openers=">#-+", followers=" \t#>")
        assert UNESCAPE_MARKDOWN.sub(r"\1", escaped) == text
        bare = re.sub(r"\\.", "x", escaped, flags=re.DOTALL)
        assert not any(char in MARKUP for char in bare)
        assert not re.search(r"^[ \t]*([>#+\-]|\d+\.)[ \t]", bare, re.MULTILINE)

    def test_markdown_keeps_a_class_name(self) -> None:
        """A backslash before a letter escapes nothing, so it stays single."""
        assert escape_markdown("App\\Jobs\\X", inline=MARKUP) == "App\\Jobs\\X"
        assert escape_markdown("1. x\n# y", inline="", openers="#") == "1\\. x\n\\# y"

    @given(
        url=st.text(ANY_CHARACTER, max_size=60).filter(lambda url: "%" not in url),
        reserved=st.sampled_from(["", "|<>", "()"]),
    )
    def test_link_url_encodes_what_ends_a_link(self, url: str, reserved: str) -> None:
        """No white space, control or reserved character is left, encoding again changes
        nothing, and decoding gives the URL back (a lone surrogate as U+FFFD).
        """
        safe = link_url(url, reserved)
        assert not any(char.isspace() or not char.isprintable() for char in safe)
        assert not any(char in reserved for char in safe)
        assert link_url(safe, reserved) == safe
        assert urllib.parse.unquote(safe) == SURROGATE.sub("\ufffd", url.strip())

    def test_link_url_examples(self) -> None:
        """A space, a no-break space and a pipe are encoded; an encoded URL is kept."""
        assert link_url(" https://x.test/a b\u00a0c|d ", "|<>") == "https://x.test/a%20b%C2%A0c%7Cd"
        assert link_url("https://x.test/a%20b") == "https://x.test/a%20b"
