"""An alert as a Discord webhook message: pure functions, within every limit.

The message is the seed's embed: the title is an emoji for the severity (✅ once
resolved) and the alert's title, the description its summary, explanation and links, the
colour red for errors, orange for warnings, blue for information and green for a
resolution, one field per alert field (short ones inline), the footer ``Chaperone Job
Supervision`` and the time the alert occurred.

Every text is cut with an ellipsis to its own limit, and the whole to the 6,000
characters Discord allows across a message's embeds: the title, the footer and up to
2,048 characters of description come first, then the fields in order while they fit (the
last one that half fits is cut, the rest counted in a final "… more fields" field).
More than 25 fields go on in further embeds of the same colour (at most 10 embeds);
the footer and timestamp close the last one.

Text that comes from the alert (its title, summary, explanation and fields: a job's name
or error) is shown as written, never as markdown: every character Discord reads as
markup is escaped with a backslash (so ``[text](url)`` in an error is no link and
``**`` no bold), control characters are dropped and a lone surrogate becomes U+FFFD.
The message's ``allowed_mentions`` is empty: an ``@everyone`` pings nobody.
"""

from __future__ import annotations

from typing import Any, Final

from chaperone.channels import Alert, Severity
from chaperone.channels.text import ELLIPSIS, fit, link_url, multi_line, one_line, utf16_length
from chaperone.channels.text import escape_markdown as _escape_markdown
from chaperone_discord import _limits

__all__ = [
    "BLUE",
    "FOOTER_TEXT",
    "GREEN",
    "ORANGE",
    "RED",
    "color_of",
    "description_of",
    "escape_markdown",
    "render",
    "title_of",
]

FOOTER_TEXT: Final = "Chaperone Job Supervision"
RED: Final = 15158332
ORANGE: Final = 15105570
BLUE: Final = 3447003
GREEN: Final = 3066993

_COLORS: Final = {
    Severity.CRITICAL: RED,
    Severity.ERROR: RED,
    Severity.WARNING: ORANGE,
    Severity.INFO: BLUE,
}
_EMOJI: Final = {
    Severity.CRITICAL: "🚨",
    Severity.ERROR: "⚠️",
    Severity.WARNING: "🔶",
    Severity.INFO: "\N{INFORMATION SOURCE}\N{VARIATION SELECTOR-16}",
}
_RESOLVED_EMOJI: Final = "✅"
_BLANK_NAME: Final = "\u200b"
"""A zero-width space: Discord rejects an empty field name."""
_BLANK_VALUE: Final = "—"
"""Discord rejects an empty field value."""
_INLINE_UP_TO: Final = 32
"""A field whose value is at most this long (and one line) is shown inline. A UUID is
longer, so the supervision id gets a line of its own, as in the seed.
"""
_DESCRIPTION_FLOOR: Final = 2048
"""The description may always take this much of the 6,000 (fields get the rest)."""
_LINK_UP_TO: Final = 512
"""A link longer than this is left out rather than cut into a broken one."""
_WORTH_CUTTING: Final = 16
"""Less room than this for a text, and it is left out rather than cut."""
_NOTE_COST: Final = 48
"""Room kept for the "N more fields not shown" field."""
_MAX_FIELDS: Final = _limits.FIELDS * _limits.EMBEDS - 1
"""Fields one message can carry, leaving a place for that note."""
_MARKUP: Final = "*_~`|<["
"""What Discord's markdown reads as markup anywhere: emphasis, code and spoilers,
mentions and custom emoji (``<@id>``), and the bracket that opens a masked link
(``[text](url)``: escaped, it opens nothing, whatever follows)."""
_LINE_MARKUP: Final = ">#-+"
"""Markup opening a line: a quote, a header, a subtext (``-#``) or a list item..."""
_LINE_MARKUP_BEFORE: Final = " \t#>"
"""...when one of these follows it."""
_LINK_END: Final = "()"
"""What would end a link's target inside a markdown link's parentheses."""

Field = tuple[str, str, bool, str]
"""A field as shown (name, value, inline), and its value before it was escaped."""


def escape_markdown(text: str) -> str:
    r"""``text`` shown as written in a Discord message: a backslash before every
    character markdown reads as markup, before the markup that opens a line, and before
    a backslash that would escape what follows it (``App\Jobs`` shows as it is).
    """
    return _escape_markdown(
        text, inline=_MARKUP, openers=_LINE_MARKUP, followers=_LINE_MARKUP_BEFORE
    )


def _shown(text: str, limit: int) -> str:
    """``text`` escaped and cut to ``limit`` UTF-16 units, never inside an escape."""
    return fit(text, limit, measure=utf16_length, escape=escape_markdown)


def color_of(alert: Alert) -> int:
    """Green once resolved; otherwise red for critical and error, orange for warning,
    blue for information.
    """
    return GREEN if alert.is_resolved else _COLORS[alert.severity]


def title_of(alert: Alert) -> str:
    """The emoji of the alert's severity (✅ once resolved) and its title, one line."""
    emoji = _RESOLVED_EMOJI if alert.is_resolved else _EMOJI[alert.severity]
    text = one_line(alert.title) or one_line(alert.headline) or alert.type
    return _shown(f"{emoji} {text}", _limits.TITLE)


def _links(alert: Alert) -> list[str]:
    lines = []
    for label, url in (("View Job Details", alert.details_url), ("Runbook", alert.runbook_url)):
        target = link_url(url, _LINK_END) if url else ""
        if target:
            line = f"[{label}]({target})"
            if utf16_length(line) <= _LINK_UP_TO:
                lines.append(line)
    return lines


def description_of(alert: Alert, limit: int = _limits.DESCRIPTION) -> str:
    """The summary, the explanation and the links (details, runbook) as markdown, in
    paragraphs, at most ``limit`` long; the links are kept whole, the summary cut first
    when it is long, then the explanation.
    """
    links = "\n".join(_links(alert))
    room = limit - (utf16_length(links) + 2 if links else 0)
    paragraphs = []
    for text in (alert.summary, alert.explanation):
        text = multi_line(text).strip()
        if text and room >= _WORTH_CUTTING:
            paragraph = _shown(text, room)
            paragraphs.append(paragraph)
            room -= utf16_length(paragraph) + 2
    if links:
        paragraphs.append(links)
    return fit("\n\n".join(paragraphs), limit, measure=utf16_length)


def _field(name: str, value: str) -> Field:
    name, value = one_line(name), multi_line(value).strip()
    shown_name = _shown(name, _limits.FIELD_NAME) if name else _BLANK_NAME
    shown_value = _shown(value, _limits.FIELD_VALUE) if value else _BLANK_VALUE
    inline = utf16_length(shown_value) <= _INLINE_UP_TO and "\n" not in shown_value
    return shown_name, shown_value, inline, value or _BLANK_VALUE


def _cost(field: Field) -> int:
    return utf16_length(field[0]) + utf16_length(field[1])


def _place(fields: list[Field], not_tried: int, room: int) -> list[Field]:
    """The fields that fit in ``room`` characters, in order, the first that does not
    cut to fit when that is worth it, and a note counting those left out.
    """
    placed: list[Field] = []
    for index, field in enumerate(fields):
        if len(placed) == _MAX_FIELDS:
            break
        after = len(fields) - index - 1 + not_tried
        if _cost(field) <= room - (_NOTE_COST if after else 0):
            placed.append(field)
            room -= _cost(field)
            continue
        name, _value, _inline, source = field
        value_room = room - _NOTE_COST - utf16_length(name)
        if value_room >= _WORTH_CUTTING:
            value = _shown(source, value_room)
            placed.append((name, value, False, value))
        break
    left_out = len(fields) + not_tried - len(placed)
    if left_out:
        note = f"{left_out} more field{'s' * (left_out != 1)} not shown"
        placed.append((ELLIPSIS, note, False, note))
    return placed


def _embeds(alert: Alert, title: str, description: str, fields: list[Field]) -> list[Any]:
    color = color_of(alert)
    chunks = [fields[at : at + _limits.FIELDS] for at in range(0, len(fields), _limits.FIELDS)]
    embeds: list[dict[str, Any]] = []
    for number, chunk in enumerate(chunks or [[]]):
        embed: dict[str, Any] = {}
        if number == 0:
            embed["title"] = title
            if description:
                embed["description"] = description
        embed["color"] = color
        if chunk:
            embed["fields"] = [
                {"name": name, "value": value, "inline": inline}
                for name, value, inline, _source in chunk
            ]
        embeds.append(embed)
    embeds[-1]["footer"] = {"text": FOOTER_TEXT}
    embeds[-1]["timestamp"] = alert.occurred_at.isoformat()
    return embeds


def render(
    alert: Alert, *, username: str | None = None, avatar_url: str | None = None
) -> dict[str, Any]:
    """The webhook message for ``alert``, within every limit Discord documents.

    ``allowed_mentions`` is empty: an ``@everyone`` in a job's error pings nobody.
    """
    title = title_of(alert)
    room = _limits.TOTAL - utf16_length(title) - utf16_length(FOOTER_TEXT)
    fields = [_field(name, value) for name, value in alert.fields[: _MAX_FIELDS + 1]]
    not_tried = max(len(alert.fields) - len(fields), 0)
    wanted = sum(map(_cost, fields)) + (_NOTE_COST if not_tried else 0)
    description = description_of(
        alert, min(_limits.DESCRIPTION, max(room - wanted, _DESCRIPTION_FLOOR))
    )
    placed = _place(fields, not_tried, room - utf16_length(description))
    payload: dict[str, Any] = {
        "embeds": _embeds(alert, title, description, placed),
        "allowed_mentions": {"parse": []},
    }
    if username:
        payload["username"] = username
    if avatar_url:
        payload["avatar_url"] = avatar_url
    return payload
