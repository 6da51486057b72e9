"""The ``slack`` channel: one Slack incoming webhook per channel object."""

from __future__ import annotations

import hashlib
import ipaddress
import urllib.parse
import weakref
from typing import Final, Self

from chaperone import Alert, Channel, ChannelSettings, Clock, Outcome, Secret, SendContext
from chaperone.channels.http import post_json
from chaperone_slack._render import render

__all__ = ["SlackChannel"]

_MASK: Final = "********"
RATE_LIMIT_WAIT: Final = 1.0
"""Seconds to hold a webhook after a ``429`` without ``Retry-After`` (Slack allows about
one message a second).
"""
_MAX_INLINE_WAIT: Final = 5.0
"""A send that finds its webhook held waits this long at most before posting; past that
it reports a transient failure and the core retries after the hold.
"""

_holds: weakref.WeakKeyDictionary[Clock, dict[str, float]] = weakref.WeakKeyDictionary()
"""Per clock (one per runtime), per webhook: the Unix time before which nothing may be
sent to it, since Slack answered ``429``. Shared by every channel object posting to that
webhook, whatever route built it.
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

    Responses: ``200 ok`` delivered; ``429`` (after ``Retry-After``, and nothing more goes
    to that webhook before then), ``408`` and ``5xx`` transient; other ``4xx``
    (``invalid_payload``, ``channel_not_found``, ``channel_is_archived``, ...) permanent.
    """

    name = "slack"
    secret_keys = frozenset({"webhook_url"})

    def __init__(self, webhook_url: Secret) -> None:
        self._url = webhook_url
        self._key = hashlib.sha256(webhook_url.reveal().encode()).hexdigest()
        self._own_holds: dict[str, float] = {}

    @classmethod
    def from_settings(cls, settings: ChannelSettings) -> Self:
        """Build the channel; ``webhook_url`` must be an https URL (http only on loopback)."""
        url = str(settings.require("webhook_url"))
        problem = _url_problem(url)
        if problem is not None:
            raise settings.problem("webhook_url", problem)
        return cls(Secret(url))

    def __repr__(self) -> str:
        return f"SlackChannel(webhook_url={_MASK!r})"

    def _holds_for(self, clock: Clock) -> dict[str, float]:
        try:
            return _holds.setdefault(clock, {})
        except TypeError:  # a clock that cannot be weakly referenced
            return self._own_holds

    async def send(self, alert: Alert, context: SendContext) -> Outcome:
        """Post the alert and classify Slack's answer."""
        holds = self._holds_for(context.clock)
        held = holds.get(self._key, 0.0) - context.clock.timestamp()
        if held > 0:
            if held > min(_MAX_INLINE_WAIT, context.timeout / 2):
                return Outcome.transient(
                    f"Slack rate-limited this webhook; not sending for {held:.1f}s more",
                    retry_after=held,
                )
            await context.clock.sleep(held)
        outcome, response = await post_json(context, self._url, render(alert))
        if response is not None and response.status_code == 429:
            wait = outcome.retry_after if outcome.retry_after is not None else RATE_LIMIT_WAIT
            holds[self._key] = max(holds.get(self._key, 0.0), context.clock.timestamp() + wait)
            outcome = Outcome.transient(outcome.detail, retry_after=wait, status_code=429)
        return outcome
