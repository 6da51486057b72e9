"""Render an alert as a Slack incoming-webhook message: pure functions, no I/O.

The message follows the seed's Slack format: the emoji and the alert's headline as the
``text`` ("🚨 Circuit Breaker Opened"), and one legacy attachment holding the subject
(job class or service) as its title, the colour of the severity, the summary and the
explanation, the alert's fields, the links, the footer ``Chaperone Job Supervision`` and
the Unix timestamp of the alert. A resolved alert is rendered as a resolution (✅, green).

Every text is cleaned (control characters dropped), escaped as Slack requires (``&``,
``<``, ``>``) and cut to a budget (the helpers of :mod:`chaperone.channels.text`), so
any alert, however long, fits Slack's limits:
``text`` under 40,000 characters, no text over 3,000 (a section block's limit), and the
whole message under 40,000 characters. Lengths are counted in UTF-16 code units, as
Slack's JavaScript does, which is never less than Python's count of code points.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from typing import Any, Final

from chaperone.channels import Alert, Severity
from chaperone.channels.text import escape_slack, fit, link_url, multi_line, utf16_length

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
    "render",
    "shown",
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

_EMPTY: Final = "—"
_URL_RESERVED: Final = "|<>"
"""What ends a link in Slack's ``<url|label>`` syntax."""


def shown(text: str, limit: int) -> str:
    """``text`` cleaned (line breaks kept), escaped for Slack and cut with an ellipsis to
    at most ``limit`` UTF-16 code units, never in the middle of an escape.
    """
    return fit(multi_line(text), limit, measure=utf16_length, escape=escape_slack)


def _safe_url(url: str | None) -> str | None:
    """``url`` with the characters that would end Slack's link syntax percent-encoded,
    when it is an http(s) URL short enough to link whole; None otherwise.
    """
    if not url:
        return None
    target = link_url(url, _URL_RESERVED)
    try:
        scheme = urllib.parse.urlsplit(target).scheme.lower()
    except ValueError:
        return None
    if scheme not in {"http", "https"}:
        return None
    return target if utf16_length(escape_slack(target)) <= LINK_URL_LIMIT else None


def _link(url: str | None, label: str) -> str | None:
    """``<url|label>`` in Slack's link syntax, or None when ``url`` cannot be linked."""
    target = _safe_url(url)
    return None if target is None else f"<{escape_slack(target)}|{label}>"


def _field(title: str, value: str) -> dict[str, Any]:
    shown_title = shown(title, FIELD_TITLE_LIMIT)
    shown_value = shown(value, FIELD_VALUE_LIMIT).strip() or _EMPTY
    short = (
        utf16_length(shown_title) <= SHORT_TITLE
        and utf16_length(shown_value) <= SHORT_VALUE
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
    summary = shown(alert.summary, SUMMARY_LIMIT).strip()
    room = BODY_LIMIT - utf16_length(summary) - 2
    explanation = shown(alert.explanation, room).strip() if alert.explanation else ""
    return "\n\n".join(part for part in (summary, explanation) if part)


def render(alert: Alert) -> dict[str, Any]:
    """The JSON body to post to a Slack incoming webhook for ``alert``.

    No ``channel`` key: incoming webhooks ignore it (route with another webhook URL).
    """
    if alert.is_resolved:
        emoji, color = RESOLVED_EMOJI, RESOLVED_COLOR
    else:
        emoji, color = EMOJI[alert.severity], COLORS[alert.severity]
    headline = shown(alert.headline, HEADLINE_LIMIT).strip() or "Chaperone Alert"
    attachment: dict[str, Any] = {
        "fallback": shown(f"{emoji} {alert.title}", FALLBACK_LIMIT),
        "color": color,
        "title": shown(alert.subject, TITLE_LIMIT).strip() or _EMPTY,
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
