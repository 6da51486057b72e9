r"""Text helpers for channels: measure, clean, escape and fit text to a service's limits.

Every channel renderer uses these, each with its own service's rules as data (which
characters its markup reads, its limits, how it counts):

- **measure**: ``len`` counts characters (code points), :func:`utf16_length` UTF-16 code
  units (what JavaScript and Java services count: an emoji past U+FFFF is two),
  :func:`utf8_length` UTF-8 bytes. Each is defined for any text, lone surrogates
  included, and counts every character at least once;
- **clean**: :func:`one_line` for a title, a name or a tag (control characters and
  escape sequences out, every line break and run of white space one space, stripped),
  :func:`multi_line` for a summary or an error (line breaks kept, ``\r\n`` made ``\n``).
  Both make a lone surrogate U+FFFD, so the result always encodes to UTF-8;
- **escape**: :func:`escape_slack` (Slack's ``&``, ``<``, ``>``), :func:`escape_markdown`
  (a backslash before the markup a Markdown dialect reads, given by the channel),
  :func:`escape_html`, and :func:`link_url` for a URL inside a link's syntax;
- **fit**: :func:`fit` cuts text to a limit in any of those measures with an ellipsis,
  never through a surrogate pair, a character's combining marks, an emoji sequence or a
  flag; :func:`truncate` is its case for characters.
"""

from __future__ import annotations

import functools
import html
import re
import unicodedata
import urllib.parse
from collections.abc import Callable
from typing import Final

from chaperone import _sanitize

__all__ = [
    "ELLIPSIS",
    "Measure",
    "escape_html",
    "escape_markdown",
    "escape_slack",
    "fit",
    "link_url",
    "multi_line",
    "one_line",
    "truncate",
    "utf8_length",
    "utf16_length",
]

ELLIPSIS: Final = "…"
"""What stands for the end of a text that was cut."""

Measure = Callable[[str], int]
"""How a service counts a text's length: ``len`` (characters), :func:`utf16_length` or
:func:`utf8_length`; any function that adds up a count of at least one per character."""

_ZWJ: Final = "\u200d"
_CLUSTER_LIMIT: Final = 32
"""A cut moves back at most this many characters to keep a character with its marks or
an emoji sequence whole; a longer cluster (a pile of combining marks) is cut inside."""
_SLACK_ESCAPES: Final = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_SLACK_SPECIAL: Final = re.compile(r"[&<>]")


# -- measures ------------------------------------------------------------------------------


def utf16_length(text: str) -> int:
    """The length of ``text`` in UTF-16 code units: a character past U+FFFF counts two,
    any other one (a lone surrogate too) one. Never raises.
    """
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def utf8_length(text: str) -> int:
    """The length of ``text`` in UTF-8 bytes; a lone surrogate counts the three bytes of
    the U+FFFD it becomes when the text is sent. Never raises.
    """
    if text.isascii():
        return len(text)
    return len(text.encode("utf-8", "surrogatepass"))


# -- cleaning ------------------------------------------------------------------------------


def one_line(text: str) -> str:
    """``text`` as one clean line: escape sequences, control characters and
    bidirectional overrides removed, a lone surrogate made U+FFFD, every line break and
    run of white space one space, stripped. Idempotent.
    """
    return " ".join(_sanitize.clean_line(text).split())


def multi_line(text: str) -> str:
    r"""``text`` as clean multi-line text: escape sequences, control characters and
    bidirectional overrides removed, ``\n`` and ``\t`` kept (``\r\n``, U+2028 and U+2029
    become ``\n``), a lone surrogate made U+FFFD. Idempotent; not stripped.
    """
    return _sanitize.clean_text(text)


# -- escaping ------------------------------------------------------------------------------


def escape_slack(text: str) -> str:
    """``text`` for Slack's mrkdwn: the three characters Slack reads as markup, ``&``,
    ``<`` and ``>``, as ``&amp;``, ``&lt;`` and ``&gt;``.
    """
    if not _SLACK_SPECIAL.search(text):
        return text
    return _SLACK_SPECIAL.sub(lambda match: _SLACK_ESCAPES[match.group()], text)


def escape_html(text: str) -> str:
    """``text`` for HTML, in an element or a quoted attribute: ``& < > " '`` escaped."""
    return html.escape(text, quote=True)


@functools.lru_cache(maxsize=16)
def _markdown_patterns(
    inline: str, openers: str, followers: str
) -> tuple[re.Pattern[str], re.Pattern[str] | None]:
    """The patterns :func:`escape_markdown` escapes: markup anywhere, markup opening a line."""
    escaping_backslash = r"\\(?=[!-/:-@\[-`{-~]|$)"
    markup = f"[{re.escape(inline)}]|{escaping_backslash}" if inline else escaping_backslash
    anywhere = re.compile(markup, re.MULTILINE)
    if not openers:
        return anywhere, None
    opening = re.compile(
        rf"^([ \t]*)([{re.escape(openers)}]|\d+\.)(?=[{re.escape(followers)}])", re.MULTILINE
    )
    return anywhere, opening


def _escape_opener(match: re.Match[str]) -> str:
    indent, opener = match.group(1), match.group(2)
    if opener.endswith("."):
        return f"{indent}{opener[:-1]}\\."
    return f"{indent}\\{opener}"


def escape_markdown(text: str, *, inline: str, openers: str = "", followers: str = " \t") -> str:
    r"""``text`` shown as written in a Markdown dialect: a backslash before each
    character of ``inline`` (markup anywhere: ``*``, ``_``, a link's ``[`` ...), before a
    backslash that would escape what follows it (ASCII punctuation or a line's end;
    ``App\Jobs`` stays as it is), and, at the start of a line (after its indentation and
    when one of ``followers`` or another opener follows), before each character of
    ``openers`` (a quote's ``>``, a header's ``#``, a list's ``-``) and the dot of a
    numbered list item (``1\. x``). The dialect's characters are the channel's to give.
    """
    anywhere, opening = _markdown_patterns(inline, openers, followers)
    escaped = anywhere.sub(lambda match: "\\" + match.group(), text)
    return escaped if opening is None else opening.sub(_escape_opener, escaped)


def _url_safe(char: str, reserved: str) -> str:
    """``char`` as it may stand in a link: itself, or percent-encoded as UTF-8."""
    if char in reserved or char.isspace() or not char.isprintable():
        valid = "\ufffd" if "\ud800" <= char <= "\udfff" else char
        return urllib.parse.quote(valid, safe="")
    return char


def link_url(url: str, reserved: str = "") -> str:
    """``url`` (stripped) safe inside a link's markup: white space, control, invisible
    and unassigned characters and each character of ``reserved`` (those that end the link in
    the channel's syntax: Slack's ``|<>``, Markdown's ``()``) percent-encoded as UTF-8, a
    lone surrogate as U+FFFD. Anything else, and a URL already encoded, is kept as it is.
    """
    url = url.strip()
    plain = url.isascii() and url.isprintable() and " " not in url
    if plain and not any(char in reserved for char in url):
        return url
    return "".join(_url_safe(char, reserved) for char in url)


# -- fitting -------------------------------------------------------------------------------


def _extends(char: str) -> bool:
    """Whether ``char`` belongs with the character before it: a combining mark, a
    variation selector, a joiner, an emoji skin tone or a tag.
    """
    code = ord(char)
    return (
        char == _ZWJ
        or 0x1F3FB <= code <= 0x1F3FF
        or 0xE0020 <= code <= 0xE007F
        or unicodedata.category(char) in {"Mn", "Me", "Mc"}
    )


def _in_pair(text: str, at: int) -> bool:
    """Whether ``at`` falls between the two halves of a surrogate pair."""
    return "\ud800" <= text[at - 1] <= "\udbff" and "\udc00" <= text[at] <= "\udfff"


def _regional(char: str) -> bool:
    return 0x1F1E6 <= ord(char) <= 0x1F1FF


def _boundary(text: str, at: int) -> int:
    """The cut at or before ``at`` that keeps clusters whole: not between a character and
    what extends it, after a joiner, inside a surrogate pair or between a flag's two
    regional indicators, when the cluster is at most :data:`_CLUSTER_LIMIT` long.
    """
    if at <= 0 or at >= len(text):
        return at
    start = at
    while at > 0 and (_extends(text[at]) or text[at - 1] == _ZWJ or _in_pair(text, at)):
        if start - at == _CLUSTER_LIMIT:
            # No boundary near: cut inside the cluster, but never through a surrogate pair.
            return start - 1 if _in_pair(text, start) else start
        at -= 1
    if _regional(text[at]):
        run = 0
        while at - run > 0 and _regional(text[at - run - 1]):
            run += 1
        at -= run % 2
    return at


def fit(
    text: str,
    limit: int,
    *,
    measure: Measure = len,
    escape: Callable[[str], str] | None = None,
    ellipsis: str = ELLIPSIS,
) -> str:
    """``text`` (escaped with ``escape`` when given) within ``limit`` as ``measure``
    counts it: the whole when it fits, else the longest start that fits followed by
    ``ellipsis``, white space before it dropped (with ``ellipsis=""``, the start alone).
    The cut comes before an escape, never inside one; never through a surrogate pair,
    nor between a character and its combining marks, inside an emoji sequence (joiners,
    skin tones) or a flag. With a limit too small for the ellipsis, the start that
    fits, without it. Never raises.
    """
    shown = escape(text) if escape is not None else text
    if len(shown) <= limit and measure(shown) <= limit:
        return shown
    render = escape if escape is not None else _same
    room = limit - measure(ellipsis)
    if room < 0:
        room, ellipsis = limit, ""
    kept = _longest_start(text, max(room, 0), measure, render)
    while kept > 0:
        start = text[: _boundary(text, kept)]
        result = render(start.rstrip() if ellipsis else start) + ellipsis
        if measure(result) <= limit:
            return result
        kept -= 1  # an escape that is not made character by character: try shorter
    return ellipsis


def _same(text: str) -> str:
    return text


def _longest_start(text: str, room: int, measure: Measure, render: Callable[[str], str]) -> int:
    """The most characters of ``text`` whose rendering is at most ``room`` long (each
    character counts at least one, so no more than ``room`` of them).
    """
    low, high = 0, min(len(text), room)
    if measure(render(text[:high])) <= room:
        return high
    while high - low > 1:  # text[:low] fits, text[:high] does not
        middle = (low + high) // 2
        if measure(render(text[:middle])) <= room:
            low = middle
        else:
            high = middle
    return low


def truncate(text: str, limit: int, *, ellipsis: str = ELLIPSIS) -> str:
    """Return ``text`` if it fits in ``limit`` characters, else its start and an ellipsis,
    ``limit`` characters in all at most: :func:`fit` counting characters. A limit shorter
    than the ellipsis is an error (:class:`ValueError`).
    """
    if limit < len(ellipsis):
        raise ValueError(f"limit {limit} is shorter than the ellipsis")
    return fit(text, limit, ellipsis=ellipsis)
