"""Render an alert as a Slack incoming-webhook message: pure functions, no I/O.

The message follows the seed's Slack format: the emoji and the alert's headline as the
``text`` ("🚨 Circuit Breaker Opened"), and one legacy attachment holding the subject
(job class or service) as its title, the colour of the severity, the summary and the
explanation, the alert's fields, the links, the footer ``Chaperone Job Supervision`` and
the Unix timestamp of the alert. A resolved alert is rendered as a resolution (✅, green).

Every text is cleaned (control characters dropped), escaped as Slack requires (``&``,
``<``, ``>``) and cut to a budget, so any alert, however long, fits Slack's limits:
``text`` under 40,000 characters, no text over 3,000 (a section block's limit), and the
whole message under 40,000 characters. Lengths are counted in UTF-16 code units, as
Slack's JavaScript does, which is never less than Python's count of code points.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterator
from typing import Any, Final

from chaperone.channels import Alert, Severity

__all__ = [
    "BODY_LIMIT",
    "COLORS",
    "EMOJI",
    "FIELD_TITLE_LIMIT",
    "FIELD_VALUE_LIMIT",
    "FOOTER",
    "MAX_FIELDS",
    "MESSAGE_LIMIT",
    "RESOLVED_COLOR",
    "RESOLVED_EMOJI",
    "TEXT_LIMIT",
    "TITLE_LIMIT",
    "escape",
    "fit",
    "render",
    "slack_length",
    "texts_of",
]

FOOTER: Final = "Chaperone Job Supervision"

TEXT_LIMIT: Final = 40_000
"""Slack cuts a message's ``text`` at 40,000 characters."""
MESSAGE_LIMIT: Final = 40_000
"""What this channel allows the whole message, every text of it counted."""
SECTION_LIMIT: Final = 3_000
"""A section block's text: the longest single text this channel sends."""

HEADLINE_LIMIT: Final = 150
"""The headline in ``text``: what a notification shows, so short."""
FALLBACK_LIMIT: Final = 300
TITLE_LIMIT: Final = 256
BODY_LIMIT: Final = SECTION_LIMIT
"""The attachment's text: summary and explanation together."""
SUMMARY_LIMIT: Final = 2_000
"""The summary's share of the body; the explanation gets the rest."""
MAX_FIELDS: Final = 20
"""Fields shown; further ones are counted in a last field."""
FIELD_TITLE_LIMIT: Final = 150
FIELD_VALUE_LIMIT: Final = 1_000
LINK_URL_LIMIT: Final = 1_400
"""A longer URL is not linked (a cut URL would lead nowhere); the links field holds two."""
SHORT_TITLE: Final = 30
SHORT_VALUE: Final = 40
"""Fields this short sit two to a row (``short``)."""

EMOJI: Final = {
    Severity.CRITICAL: "🚨",
    Severity.ERROR: "🚨",
    Severity.WARNING: "⚠️",
    Severity.INFO: "ℹ️",  # noqa: RUF001 - the information emoji, not a letter
}
RESOLVED_EMOJI: Final = "✅"
COLORS: Final = {
    Severity.CRITICAL: "danger",
    Severity.ERROR: "danger",
    Severity.WARNING: "warning",
    Severity.INFO: "#439FE0",
}
RESOLVED_COLOR: Final = "good"

_ELLIPSIS: Final = "…"
_EMPTY: Final = "—"
_ESCAPES: Final = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_CONTROL: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
"""C0 and C1 control characters but tab and newline: Slack shows nothing useful for them."""
_SURROGATE: Final = re.compile(r"[\ud800-\udfff]")
"""Lone surrogates, which no UTF-8 encoder accepts."""
_URL_RESERVED: Final = frozenset("|<>")


def slack_length(text: str) -> int:
    """The length of ``text`` as Slack counts it: UTF-16 code units."""
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


def _units(char: str) -> int:
    return 2 if ord(char) > 0xFFFF else 1


def _clean(text: str) -> str:
    text = text.replace("\r\n", "\n")
    return _SURROGATE.sub("\ufffd", _CONTROL.sub("", text))


def escape(text: str) -> str:
    """Escape the three characters Slack reads as markup: ``&``, ``<`` and ``>``."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def fit(text: str, limit: int) -> str:
    """``text`` cleaned and escaped for Slack, cut with an ellipsis to at most ``limit``
    UTF-16 code units, never in the middle of an escape.
    """
    cleaned = _clean(text)
    if len(cleaned) <= limit:
        escaped = escape(cleaned)
        if slack_length(escaped) <= limit:
            return escaped
    budget = limit - len(_ELLIPSIS)
    pieces: list[str] = []
    used = 0
    # Each character is at least one unit, so no more than ``budget`` of them can fit.
    for char in cleaned[:budget]:
        piece = _ESCAPES.get(char, char)
        size = len(piece) if char in _ESCAPES else _units(char)
        if used + size > budget:
            break
        pieces.append(piece)
        used += size
    return "".join(pieces) + _ELLIPSIS


def _safe_url(url: str | None) -> str | None:
    """``url`` with the characters that would end Slack's link syntax percent-encoded,
    when it is an http(s) URL short enough to link whole; None otherwise.
    """
    if not url:
        return None
    target = _clean(url).strip()
    try:
        scheme = urllib.parse.urlsplit(target).scheme.lower()
    except ValueError:
        return None
    if scheme not in {"http", "https"}:
        return None
    target = "".join(
        urllib.parse.quote(char, safe="") if char in _URL_RESERVED or char.isspace() else char
        for char in target
    )
    return target if slack_length(escape(target)) <= LINK_URL_LIMIT else None


def _link(url: str | None, label: str) -> str | None:
    """``<url|label>`` in Slack's link syntax, or None when ``url`` cannot be linked."""
    target = _safe_url(url)
    return None if target is None else f"<{escape(target)}|{label}>"


def _field(title: str, value: str) -> dict[str, Any]:
    shown_title = fit(title, FIELD_TITLE_LIMIT)
    shown_value = fit(value, FIELD_VALUE_LIMIT).strip() or _EMPTY
    short = (
        slack_length(shown_title) <= SHORT_TITLE
        and slack_length(shown_value) <= SHORT_VALUE
        and "\n" not in shown_value
    )
    return {"title": shown_title, "value": shown_value, "short": short}


def _fields(alert: Alert) -> list[dict[str, Any]]:
    fields = [_field(name, value) for name, value in alert.fields[:MAX_FIELDS]]
    hidden = len(alert.fields) - MAX_FIELDS
    if hidden > 0:
        more = "1 more field" if hidden == 1 else f"{hidden} more fields"
        fields.append({"title": "More", "value": f"{more} not shown", "short": False})
    links = [
        link
        for link in (
            _link(alert.details_url, "View Job Details"),
            _link(alert.runbook_url, "Runbook"),
        )
        if link
    ]
    if links:
        fields.append({"title": "Links", "value": " • ".join(links), "short": False})
    return fields


def _body(alert: Alert) -> str:
    summary = fit(alert.summary, SUMMARY_LIMIT).strip()
    room = BODY_LIMIT - slack_length(summary) - 2
    explanation = fit(alert.explanation, room).strip() if alert.explanation else ""
    return "\n\n".join(part for part in (summary, explanation) if part)


def render(alert: Alert) -> dict[str, Any]:
    """The JSON body to post to a Slack incoming webhook for ``alert``.

    No ``channel`` key: incoming webhooks ignore it (route with another webhook URL).
    """
    if alert.is_resolved:
        emoji, color = RESOLVED_EMOJI, RESOLVED_COLOR
    else:
        emoji, color = EMOJI[alert.severity], COLORS[alert.severity]
    headline = fit(alert.headline, HEADLINE_LIMIT).strip() or "Chaperone Alert"
    attachment: dict[str, Any] = {
        "fallback": fit(f"{emoji} {alert.title}", FALLBACK_LIMIT),
        "color": color,
        "title": fit(alert.subject, TITLE_LIMIT).strip() or _EMPTY,
    }
    title_link = _safe_url(alert.details_url)
    if title_link:
        attachment["title_link"] = title_link
    body = _body(alert)
    if body:
        attachment["text"] = body
    fields = _fields(alert)
    if fields:
        attachment["fields"] = fields
    attachment["mrkdwn_in"] = ["fields"]
    attachment["footer"] = FOOTER
    attachment["ts"] = int(alert.occurred_at.timestamp())
    return {"text": f"{emoji} {headline}", "attachments": [attachment]}


def texts_of(value: Any) -> Iterator[str]:
    """Every string in a rendered message (keys left out): what its size is made of."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from texts_of(item)
    elif isinstance(value, list):
        for item in value:
            yield from texts_of(item)
