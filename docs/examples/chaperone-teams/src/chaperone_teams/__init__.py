"""Microsoft Teams channel for Chaperone: each alert as an Adaptive Card, posted to a
Teams incoming webhook (a Workflows "When a Teams webhook request is received" URL, or a
classic Office 365 connector URL).

Set ``CHAPERONE_TEAMS_WEBHOOK_URL`` (or ``webhook_url`` under ``[channels.teams]``) and
add ``teams`` to the alert channels.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from typing import Any, Final, Self

import chaperone
from chaperone import Alert, Channel, ChannelSettings, Outcome, Secret, SendContext
from chaperone.channels.http import retry_after_seconds
from chaperone.channels.text import truncate
from chaperone.hookspecs import RegisterChannel

__all__ = ["PAYLOAD_LIMIT", "TeamsChannel", "chaperone_register_channels", "classify", "render"]

PAYLOAD_LIMIT: Final = 28_000
"""Bytes of JSON Teams takes in one message (it documents 28 KB, and refuses more)."""
TEAMS_HOSTS: Final = (".webhook.office.com", ".logic.azure.com", ".api.powerplatform.com")
"""Where Teams webhooks live: classic connectors, and Workflows (Power Automate)."""
LOOPBACK: Final = frozenset({"127.0.0.1", "localhost", "::1"})
SEVERITY: Final = {
    "critical": ("attention", "🚨"),
    "error": ("attention", "⚠️"),
    "warning": ("warning", "🔶"),
    "info": ("accent", "ℹ️"),  # noqa: RUF001 - the information emoji, on purpose
}
"""Severity → the card header's colour (red, orange, blue) and the title's emoji."""
LEVELS: Final = ((256, 4000, 256, 2000, 40), (200, 1000, 100, 300, 25), (150, 300, 0, 0, 0))
"""Tried in order until the message fits: the most characters of the title, of the
summary and explanation, of a fact's name and value, and the most facts shown."""
HINTS: Final = {
    400: "Teams refused the card",
    404: "no such webhook: was it removed from the channel?",
    413: "message too large",
}
_CONTROL: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_REPORTED: Final = re.compile(r"returned HTTP error (\d{3})")


def classify(status: int, retry_after: float | None = None) -> Outcome:
    """How a Teams answer ends a send: 2xx delivered; 429 and 5xx transient (retried,
    not before ``retry_after`` seconds); anything else permanent.

    >>> classify(200).kind.value
    'delivered'
    >>> busy = classify(429, retry_after=2.0)
    >>> busy.kind.value, busy.retry_after
    ('transient', 2.0)
    >>> classify(404).detail
    'HTTP 404: no such webhook: was it removed from the channel?'
    """
    detail = f"HTTP {status}" + (f": {HINTS[status]}" if status in HINTS else "")
    if 200 <= status < 300:
        return Outcome.delivered(detail, status_code=status)
    if status == 429 or status >= 500:
        return Outcome.transient(detail, retry_after=retry_after, status_code=status)
    return Outcome.permanent(detail, status_code=status)


def _clip(text: str, limit: int) -> str:
    """``text`` without control characters (Teams shows none), cut to ``limit``."""
    return truncate(_CONTROL.sub("", text), limit)


def _text(text: str, limit: int, **style: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": _clip(text, limit), "wrap": True, **style}


def _linkable(url: str | None) -> bool:
    """Whether ``url`` can be a button: an http(s) URL of at most 2 KB, without control
    characters. A cut URL would be a broken link, so none is cut.
    """
    if url is None or not url.startswith(("http://", "https://")):
        return False
    return url.isprintable() and len(url.encode()) <= 2048


def _card(alert: Alert, title: int, text: int, name: int, value: int, facts: int) -> dict[str, Any]:
    style, icon = ("good", "✅") if alert.is_resolved else SEVERITY[alert.severity.value]
    header = _text(f"{icon} {alert.title}", title, weight="Bolder", size="Large")
    body: list[dict[str, Any]] = [
        {"type": "Container", "style": style, "bleed": True, "items": [header]},
        _text(alert.summary, text),
    ]
    if alert.explanation:
        body.append(_text(alert.explanation, text, isSubtle=True))
    shown = alert.fields[:facts]
    if shown:
        pairs = [{"title": _clip(k, name), "value": _clip(v, value)} for k, v in shown]
        body.append({"type": "FactSet", "facts": pairs})
    if hidden := len(alert.fields) - len(shown):
        body.append(_text(f"{hidden} more fields not shown", 100, isSubtle=True))
    footer = f"Chaperone Job Supervision · {alert.occurred_at:%Y-%m-%d %H:%M:%S} UTC"
    body.append(_text(footer, 100, size="Small", isSubtle=True))
    links = (("View Job Details", alert.details_url), ("View Runbook", alert.runbook_url))
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "msteams": {"width": "Full"},
                    "body": body,
                    "actions": [
                        {"type": "Action.OpenUrl", "title": label, "url": url}
                        for label, url in links
                        if _linkable(url)
                    ],
                },
            }
        ],
    }


def render(alert: Alert) -> bytes:
    """The JSON body of the Teams message for ``alert``, at most :data:`PAYLOAD_LIMIT`
    bytes: texts are cut, then facts left out, until it fits (the last level always does).
    """
    for level in LEVELS:
        body = json.dumps(_card(alert, *level), ensure_ascii=False).encode()
        if len(body) <= PAYLOAD_LIMIT:
            break
    return body


class TeamsChannel(Channel):
    """Posts each alert to a Teams channel's incoming webhook as an Adaptive Card."""

    name = "teams"
    setting_keys = frozenset({"webhook_url"})
    secret_keys = frozenset({"webhook_url"})
    pace = (4, 1.0)
    """Teams throttles a webhook sent more than four requests in a second."""

    def __init__(self, webhook_url: Secret) -> None:
        self._url = webhook_url

    def __repr__(self) -> str:
        return f"<TeamsChannel webhook_url={self._url!r}>"

    @classmethod
    def from_settings(cls, settings: ChannelSettings) -> Self:
        """Build the channel; ``webhook_url`` must be an https URL on a Teams webhook host
        (or an http URL on the loopback interface, for tests).
        """
        url = settings.secret("webhook_url")
        try:
            parts = urllib.parse.urlsplit(url.reveal())
            parts.port  # noqa: B018 - raises ValueError for a malformed port
        except ValueError:
            raise settings.problem("webhook_url", "is not a valid URL") from None
        host = (parts.hostname or "").lower()
        local = host in LOOPBACK and parts.scheme in {"http", "https"}
        teams = parts.scheme == "https" and host.endswith(TEAMS_HOSTS) and len(parts.path) > 1
        if not (local or teams):
            raise settings.problem(
                "webhook_url",
                "must be the https URL of a Teams webhook (webhook.office.com, "
                "logic.azure.com or api.powerplatform.com)",
            )
        return cls(url)

    async def send(self, alert: Alert, context: SendContext) -> Outcome:
        """Post the card with the shared client and classify the answer. A timeout or a
        refused connection raises: the core counts that as transient.
        """
        response = await context.http.post(
            self._url.reveal(),
            content=render(alert),
            headers={"Content-Type": "application/json"},
            timeout=context.timeout,
        )
        status = response.status_code
        # A classic connector may answer 200 with "... returned HTTP error 413 ..." as text.
        if 200 <= status < 300 and (reported := _REPORTED.search(response.text)):
            status = int(reported.group(1))
        return classify(status, retry_after_seconds(response.headers.get("Retry-After")))


@chaperone.hookimpl
def chaperone_register_channels(register: RegisterChannel) -> None:
    """Register the ``teams`` channel."""
    register(TeamsChannel)
