"""The ``slack`` channel: one Slack incoming webhook per channel object."""

from __future__ import annotations

import ipaddress
import urllib.parse
from typing import Final, Self

from chaperone.channels import (
    Alert,
    Channel,
    ChannelSettings,
    Outcome,
    Secret,
    SendContext,
    post_json,
)
from chaperone_slack._render import render

__all__ = ["SlackChannel"]

_MASK: Final = "********"
RATE_LIMIT_WAIT: Final = 1.0
"""Seconds to hold a webhook after a ``429`` without ``Retry-After`` (Slack allows about
one message a second).
"""


def _url_problem(url: str) -> str | None:
    """What is wrong with a webhook URL, without quoting it; None when it is fine."""
    if any(char.isspace() for char in url):
        return "is not a valid URL (it contains spaces)"
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        return "is not a valid URL"
    if not parts.hostname or parts.scheme.lower() not in {"http", "https"}:
        return "must be an absolute https:// URL, like https://hooks.slack.com/services/..."
    if parts.scheme.lower() == "http" and not _is_loopback(parts.hostname):
        return "must use https:// (http:// is accepted only for 127.0.0.1 or localhost)"
    return None


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SlackChannel(Channel):
    """Posts each alert to a Slack incoming webhook (``webhook_url``, a secret).

    The webhook URL is its credential: it is held as a :class:`~chaperone.Secret`, and
    the core masks it in any error body quoted into an outcome's detail.

    Responses: ``200 ok`` delivered; ``429`` (after ``Retry-After``, one second when it
    gives none), ``408`` and ``5xx`` transient; other ``4xx`` (``invalid_payload``,
    ``channel_not_found``, ``channel_is_archived``, ...) permanent.

    Pacing is the core's, across every process sharing the store: at most one message a
    second per webhook (:attr:`pace`), and after a ``429`` nothing more goes to that
    webhook before its ``Retry-After`` has passed, whichever route or process sends.
    """

    name = "slack"
    secret_keys = frozenset({"webhook_url"})
    setting_keys = frozenset({"webhook_url"})
    pace = (1, 1.0)

    def __init__(self, webhook_url: Secret) -> None:
        self._url = webhook_url

    @classmethod
    def from_settings(cls, settings: ChannelSettings) -> Self:
        """Build the channel; ``webhook_url`` must be an https URL (http only on loopback)."""
        url = settings.require_text("webhook_url")
        problem = _url_problem(url)
        if problem is not None:
            raise settings.problem("webhook_url", problem)
        return cls(Secret(url))

    def __repr__(self) -> str:
        return f"SlackChannel(webhook_url={_MASK!r})"

    async def send(self, alert: Alert, context: SendContext) -> Outcome:
        """Post the alert and classify Slack's answer (a ``429`` always names a wait,
        which the core holds the webhook for).
        """
        outcome, response = await post_json(context, self._url, render(alert))
        if response is not None and response.status_code == 429:
            wait = outcome.retry_after if outcome.retry_after is not None else RATE_LIMIT_WAIT
            outcome = Outcome.transient(outcome.detail, retry_after=wait, status_code=429)
        return outcome
