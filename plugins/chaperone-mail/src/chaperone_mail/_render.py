r"""Alert → e-mail: the seed's "Example Email Alert", as multipart text and HTML.

Pure functions, no I/O. Every piece of the alert is cleaned (control characters out,
line breaks out of one-line places such as the subject) and cut to a limit (the helpers
of :mod:`chaperone.channels.text`), so any
alert, however long or strange, renders to a message that serialises, carries no
header injection, and stays under :data:`MESSAGE_LIMIT` bytes::

    Subject: [Chaperone Alert] Job Stuck: App\Jobs\ProcessLargeDataset

    Job Stuck Alert
    Severity: error · Type: job_stuck

    A supervised job has been detected as stuck and may require intervention.

    Supervision ID: 550e8400-e29b-41d4-a716-446655440000
    Job Class: App\Jobs\ProcessLargeDataset
    Stuck Duration: 30 minutes
    Last Heartbeat: 2024-01-15 10:30:00 UTC

    This job may be in an infinite loop, deadlocked, or otherwise unable to complete.

    View Job Details: https://app.example.com/chaperone/jobs/550e8400-...
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Sequence
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Final

import attrs

from chaperone.channels import Alert, Severity
from chaperone.channels.text import escape_html, fit, link_url, multi_line, one_line

__all__ = [
    "FIELD_NAME_LIMIT",
    "FIELD_VALUE_LIMIT",
    "HEADLINE_LIMIT",
    "MAX_FIELDS",
    "MESSAGE_LIMIT",
    "SUBJECT_LIMIT",
    "TEXT_LIMIT",
    "URL_LIMIT",
    "MailContent",
    "build_message",
    "render",
    "subject",
]

SUBJECT_LIMIT: Final = 200
"""Characters in the Subject header, prefix included."""
HEADLINE_LIMIT: Final = 200
"""Characters in the headline and the severity line."""
TEXT_LIMIT: Final = 5_000
"""Characters in the summary, and in the explanation."""
FIELD_NAME_LIMIT: Final = 200
FIELD_VALUE_LIMIT: Final = 1_000
MAX_FIELDS: Final = 40
"""Fields shown; past that one line says how many more there were."""
URL_LIMIT: Final = 4_096
"""A longer link is left out (a cut URL would lead nowhere)."""
MESSAGE_LIMIT: Final = 1_048_576
"""Bytes of the whole serialised message: far under any server's size limit (10 MB
for a default Postfix, 25 MB for Gmail).
"""

FOOTER: Final = "Chaperone Job Supervision"
LINK_LABEL: Final = "View Job Details"
_FIRING_PREFIX: Final = "[Chaperone Alert]"
_RESOLVED_PREFIX: Final = "[Chaperone Resolved]"

_COLORS: Final = {
    Severity.CRITICAL: "#b91c1c",
    Severity.ERROR: "#dc2626",
    Severity.WARNING: "#d97706",
    Severity.INFO: "#2563eb",
}
_RESOLVED_COLOR: Final = "#16a34a"
_HEADER_TOKEN: Final = re.compile(r"[^A-Za-z0-9._:@/+=-]")


@attrs.frozen
class MailContent:
    """The three renderings of one alert."""

    subject: str
    text: str
    html: str


# -- cleaning ---------------------------------------------------------------------------


def _line(text: str, limit: int) -> str:
    """``text`` on one line (runs of white space one space, stripped), cut to ``limit``
    characters with an ellipsis.
    """
    return fit(one_line(text), limit)


def _paragraph(text: str, limit: int) -> str:
    """``text`` with its line breaks kept, stripped, cut to ``limit`` characters with an
    ellipsis.
    """
    return fit(multi_line(text).strip(), limit)


def _link(url: str | None) -> str | None:
    """``url`` (white space and controls in it percent-encoded) when it is an http(s) URL
    short enough to give whole, else None.
    """
    if not url or len(url) > URL_LIMIT:
        return None
    target = link_url(url)
    parts = urllib.parse.urlsplit(target)
    if parts.scheme.lower() not in {"http", "https"} or not parts.netloc:
        return None
    return target


# -- pieces -----------------------------------------------------------------------------


def subject(alert: Alert) -> str:
    r"""``[Chaperone Alert] Job Stuck: App\Jobs\X`` (``[Chaperone Resolved] ...`` for a
    resolved alert): one line, at most :data:`SUBJECT_LIMIT` characters.
    """
    prefix = _RESOLVED_PREFIX if alert.is_resolved else _FIRING_PREFIX
    title = _line(alert.title, SUBJECT_LIMIT) or _line(alert.headline, SUBJECT_LIMIT)
    return fit(f"{prefix} {title or alert.type}", SUBJECT_LIMIT)


def _headline(alert: Alert) -> str:
    """``Job Stuck Alert`` for a firing alert; a resolved one's headline as it is."""
    headline = _line(alert.headline, HEADLINE_LIMIT) or alert.type
    if not alert.is_resolved and not headline.lower().endswith("alert"):
        headline = f"{headline} Alert"
    return fit(headline, HEADLINE_LIMIT)


def _greeting(alert: Alert) -> str:
    """``Severity: error · Type: job_stuck`` (and ``· Resolved`` once it is over)."""
    line = f"Severity: {alert.severity.value} · Type: {alert.type}"
    return fit(line + (" · Resolved" if alert.is_resolved else ""), HEADLINE_LIMIT)


def _fields(alert: Alert) -> tuple[list[tuple[str, str]], int]:
    """The fields shown (cleaned and cut) and how many were left out."""
    shown = [
        (
            _line(name, FIELD_NAME_LIMIT) or "-",
            _paragraph(value, FIELD_VALUE_LIMIT),
        )
        for name, value in alert.fields[:MAX_FIELDS]
    ]
    return shown, max(0, len(alert.fields) - MAX_FIELDS)


def _more(hidden: int) -> str:
    return f"… and {hidden} more field{'s' if hidden != 1 else ''} not shown"


def _footer(alert: Alert) -> str:
    return f"{FOOTER} · {alert.occurred_at:%Y-%m-%d %H:%M:%S} UTC"


# -- renderings -------------------------------------------------------------------------


def render(alert: Alert) -> MailContent:
    """Render ``alert`` as a subject, a plain-text body and an HTML body."""
    return MailContent(subject=subject(alert), text=_text(alert), html=_html(alert))


def _text(alert: Alert) -> str:
    blocks = [f"{_headline(alert)}\n{_greeting(alert)}"]
    summary = _paragraph(alert.summary, TEXT_LIMIT)
    if summary:
        blocks.append(summary)
    fields, hidden = _fields(alert)
    if fields or hidden:
        lines = [f"{name}: {value}" for name, value in fields]
        if hidden:
            lines.append(_more(hidden))
        blocks.append("\n".join(lines))
    explanation = _paragraph(alert.explanation, TEXT_LIMIT)
    if explanation:
        blocks.append(explanation)
    links = []
    details = _link(alert.details_url)
    if details:
        links.append(f"{LINK_LABEL}: {details}")
    runbook = _link(alert.runbook_url)
    if runbook:
        links.append(f"Runbook: {runbook}")
    if links:
        blocks.append("\n".join(links))
    blocks.append(f"-- \n{_footer(alert)}")
    return "\n\n".join(blocks) + "\n"


def _h(text: str) -> str:
    """HTML-escape ``text``, line breaks as ``<br>``."""
    return escape_html(text).replace("\n", "<br>\n")


def _html(alert: Alert) -> str:
    color = _RESOLVED_COLOR if alert.is_resolved else _COLORS[alert.severity]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_h(subject(alert))}</title></head>",
        '<body style="margin:0;padding:0;background:#f4f4f5;color:#18181b;'
        "font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;\">",
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" '
        'style="background:#f4f4f5;padding:24px 0;"><tr><td align="center">',
        '<table role="presentation" width="600" cellpadding="0" cellspacing="0" '
        'style="max-width:600px;width:100%;background:#ffffff;border-radius:6px;'
        f'border-top:4px solid {color};">',
        '<tr><td style="padding:24px;">',
        f'<h1 style="margin:0 0 6px;font-size:20px;">{_h(_headline(alert))}</h1>',
        f'<p style="margin:0 0 16px;font-size:13px;color:{color};">'
        f"<strong>{_h(_greeting(alert))}</strong></p>",
    ]
    summary = _paragraph(alert.summary, TEXT_LIMIT)
    if summary:
        parts.append(f'<p style="margin:0 0 16px;line-height:1.5;">{_h(summary)}</p>')
    fields, hidden = _fields(alert)
    if fields or hidden:
        parts.append(
            '<table role="presentation" cellpadding="0" cellspacing="0" '
            'style="width:100%;border-collapse:collapse;margin:0 0 16px;font-size:14px;">'
        )
        for name, value in fields:
            parts.append(
                '<tr><th align="left" valign="top" style="padding:6px 12px 6px 0;'
                f'white-space:nowrap;color:#52525b;font-weight:600;">{_h(name)}</th>'
                f'<td style="padding:6px 0;word-break:break-word;">{_h(value)}</td></tr>'
            )
        if hidden:
            parts.append(
                f'<tr><td colspan="2" style="padding:6px 0;color:#71717a;">{_h(_more(hidden))}'
                "</td></tr>"
            )
        parts.append("</table>")
    explanation = _paragraph(alert.explanation, TEXT_LIMIT)
    if explanation:
        parts.append(
            f'<p style="margin:0 0 16px;line-height:1.5;color:#3f3f46;">{_h(explanation)}</p>'
        )
    details = _link(alert.details_url)
    if details:
        parts.append(
            f'<p style="margin:24px 0;"><a href="{_h(details)}" style="display:inline-block;'
            f"padding:10px 18px;background:{color};color:#ffffff;text-decoration:none;"
            f'border-radius:4px;font-weight:600;">{LINK_LABEL}</a></p>'
        )
    runbook = _link(alert.runbook_url)
    if runbook:
        parts.append(
            f'<p style="margin:0 0 16px;font-size:14px;">Runbook: <a href="{_h(runbook)}">'
            f"{_h(runbook)}</a></p>"
        )
    parts += [
        "</td></tr>",
        '<tr><td style="padding:12px 24px;border-top:1px solid #e4e4e7;font-size:12px;'
        f'color:#71717a;">{_h(_footer(alert))}</td></tr>',
        "</table></td></tr></table></body></html>",
    ]
    return "\n".join(parts) + "\n"


# -- the message ------------------------------------------------------------------------


def _header_token(text: str, limit: int = 200) -> str:
    """``text`` reduced to characters safe in an ``X-`` header, cut to ``limit``."""
    return fit(_HEADER_TOKEN.sub("_", text), limit, ellipsis="...") or "-"


def build_message(
    alert: Alert,
    *,
    sender: Address,
    recipients: Sequence[str],
    now: datetime,
) -> EmailMessage:
    """The whole e-mail for ``alert``: headers, then text and HTML alternatives."""
    content = render(alert)
    message = EmailMessage()
    message["Subject"] = content.subject
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid("chaperone", domain=sender.domain or "localhost")
    # RFC 3834: automatic mail; vacation responders must not answer it.
    message["Auto-Submitted"] = "auto-generated"
    message["X-Chaperone-Alert-Type"] = alert.type
    message["X-Chaperone-Status"] = alert.status.value
    message["X-Chaperone-Severity"] = alert.severity.value
    message["X-Chaperone-Incident"] = _header_token(alert.incident_key)
    message.set_content(content.text, subtype="plain", charset="utf-8")
    message.add_alternative(content.html, subtype="html", charset="utf-8")
    return message
