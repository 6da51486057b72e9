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

import re
from typing import Any, Final

from chaperone.channels import Alert, Severity
from chaperone_discord import _limits
from chaperone_discord._limits import length

__all__ = [
    "BLUE",
    "FOOTER_TEXT",
    "GREEN",
    "ORANGE",
    "RED",
    "color_of",
    "description_of",
    "escape_markdown",
    "fit",
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
_ELLIPSIS: Final = "…"
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
_CONTROL: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
"""C0 and C1 control characters other than tab and newline: dropped."""
_SURROGATE: Final = re.compile(r"[\ud800-\udfff]")
"""Lone surrogates, which no UTF-8 encoder accepts: replaced by U+FFFD."""
_MARKUP: Final = re.compile(r"[*_~`|<\[]|\\(?=[!-/:-@\[-`{-~]|$)", re.MULTILINE)
"""What Discord's markdown reads as markup anywhere: emphasis, code and spoilers,
mentions and custom emoji (``<@id>``), the bracket that opens a masked link
(``[text](url)``: escaped, it opens nothing, whatever follows), and a backslash that
would escape what follows it (before ASCII punctuation or at a line's end;
``App\\Jobs`` shows as it is)."""
_LINE_MARKUP: Final = re.compile(r"^([ \t]*)(>|#|-|\+)(?=[ \t#>])", re.MULTILINE)
"""Markup opening a line: a quote, a header, a subtext (``-#``) or a list item."""
_NUMBERED: Final = re.compile(r"^([ \t]*\d+)\.(?=[ \t])", re.MULTILINE)
"""A numbered list item opening a line."""
_LINE_BREAKS: Final = re.compile(r"\s*[\n\t\u2028\u2029]\s*")

Field = tuple[str, str, bool]


def fit(text: str, limit: int) -> str:
    """``text`` if it is at most ``limit`` long (in UTF-16 units), else its start and an
    ellipsis, ``limit`` long at most. Never splits a surrogate pair; drops a lone
    surrogate at the cut rather than raise on it.
    """
    if length(text) <= limit:
        return text
    room = max(limit - length(_ELLIPSIS), 0)
    units = text.encode("utf-16-le", "surrogatepass")[: room * 2]
    start = units.decode("utf-16-le", errors="ignore")
    return start.rstrip() + _ELLIPSIS


def _clean(text: str, limit: int | None = None) -> str:
    """``text`` without control characters (tab and newline kept), stripped. With a
    ``limit``, only as much of a long text as could show is cleaned, and an ellipsis
    stands for the rest.
    """
    rest = ""
    if limit is not None and len(text) > 2 * limit:
        text, rest = text[: 2 * limit], _ELLIPSIS
    cleaned = _CONTROL.sub("", _SURROGATE.sub("\ufffd", text.replace("\r\n", "\n"))).strip()
    return cleaned + rest


def escape_markdown(text: str) -> str:
    """``text`` shown as written in a Discord message: a backslash before every
    character markdown reads as markup, and before the markup that opens a line.
    """
    escaped = _MARKUP.sub(lambda match: "\\" + match.group(), text)
    escaped = _LINE_MARKUP.sub(lambda match: f"{match.group(1)}\\{match.group(2)}", escaped)
    return _NUMBERED.sub(lambda match: f"{match.group(1)}\\.", escaped)


def _one_line(text: str, limit: int | None = None) -> str:
    return _LINE_BREAKS.sub(" ", _clean(text, limit))


def color_of(alert: Alert) -> int:
    """Green once resolved; otherwise red for critical and error, orange for warning,
    blue for information.
    """
    return GREEN if alert.is_resolved else _COLORS[alert.severity]


def title_of(alert: Alert) -> str:
    """The emoji of the alert's severity (✅ once resolved) and its title, one line."""
    emoji = _RESOLVED_EMOJI if alert.is_resolved else _EMOJI[alert.severity]
    limit = _limits.TITLE
    text = (
        escape_markdown(_one_line(alert.title, limit))
        or escape_markdown(_one_line(alert.headline, limit))
        or escape_markdown(alert.type)
    )
    return fit(f"{emoji} {text}", _limits.TITLE)


def _link_target(url: str) -> str:
    """``url`` safe inside a markdown link's parentheses."""
    cleaned = _CONTROL.sub("", url).strip()
    return cleaned.replace(" ", "%20").replace("(", "%28").replace(")", "%29")


def _links(alert: Alert) -> list[str]:
    lines = []
    for label, url in (("View Job Details", alert.details_url), ("Runbook", alert.runbook_url)):
        if url and _link_target(url):
            line = f"[{label}]({_link_target(url)})"
            if length(line) <= _LINK_UP_TO:
                lines.append(line)
    return lines


def description_of(alert: Alert, limit: int = _limits.DESCRIPTION) -> str:
    """The summary, the explanation and the links (details, runbook) as markdown, in
    paragraphs, at most ``limit`` long; the links are kept whole, the summary cut first
    when it is long, then the explanation.
    """
    links = "\n".join(_links(alert))
    room = limit - (length(links) + 2 if links else 0)
    paragraphs = []
    for text in (alert.summary, alert.explanation):
        text = escape_markdown(_clean(text, limit))
        if text and room >= _WORTH_CUTTING:
            paragraph = fit(text, room)
            paragraphs.append(paragraph)
            room -= length(paragraph) + 2
    if links:
        paragraphs.append(links)
    return fit("\n\n".join(paragraphs), limit)


def _field(name: str, value: str) -> Field:
    name = escape_markdown(_one_line(name, _limits.FIELD_NAME))
    value = escape_markdown(_clean(value, _limits.FIELD_VALUE))
    shown_name = fit(name or _BLANK_NAME, _limits.FIELD_NAME)
    shown_value = fit(value or _BLANK_VALUE, _limits.FIELD_VALUE)
    inline = length(shown_value) <= _INLINE_UP_TO and "\n" not in shown_value
    return shown_name, shown_value, inline


def _cost(field: Field) -> int:
    return length(field[0]) + length(field[1])


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
        name, value, _inline = field
        value_room = room - _NOTE_COST - length(name)
        if value_room >= _WORTH_CUTTING:
            placed.append((name, fit(value, value_room), False))
        break
    left_out = len(fields) + not_tried - len(placed)
    if left_out:
        placed.append((_ELLIPSIS, f"{left_out} more field{'s' * (left_out != 1)} not shown", False))
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
                {"name": name, "value": value, "inline": inline} for name, value, inline in chunk
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
    room = _limits.TOTAL - length(title) - length(FOOTER_TEXT)
    fields = [_field(name, value) for name, value in alert.fields[: _MAX_FIELDS + 1]]
    not_tried = max(len(alert.fields) - len(fields), 0)
    wanted = sum(map(_cost, fields)) + (_NOTE_COST if not_tried else 0)
    description = description_of(
        alert, min(_limits.DESCRIPTION, max(room - wanted, _DESCRIPTION_FLOOR))
    )
    placed = _place(fields, not_tried, room - length(description))
    payload: dict[str, Any] = {
        "embeds": _embeds(alert, title, description, placed),
        "allowed_mentions": {"parse": []},
    }
    if username:
        payload["username"] = username
    if avatar_url:
        payload["avatar_url"] = avatar_url
    return payload
