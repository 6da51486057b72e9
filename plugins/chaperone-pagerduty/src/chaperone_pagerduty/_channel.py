"""The ``pagerduty`` channel: trigger and resolve PagerDuty incidents (Events API v2)."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from typing import Any, Final, Self

import httpx

from chaperone.channels import (
    Alert,
    Channel,
    ChannelSettings,
    Outcome,
    OutcomeKind,
    Secret,
    SendContext,
    classify_response,
)
from chaperone_pagerduty._render import EVENTS_URL, render_event

__all__ = ["PagerDutyChannel"]

_ROUTING_KEY: Final = re.compile(r"[A-Za-z0-9]{32}")
_MASK: Final = "********"
_BODY_EXCERPT: Final = 200
"""How much of an error response goes into the outcome's detail (as classify_response)."""
_MIN_FRAGMENT: Final = 8
"""A piece of the routing key this long, quoted back by a server, is masked too."""


class PagerDutyChannel(Channel):
    """Sends a ``trigger`` event for a firing alert, a ``resolve`` event, with the same
    ``dedup_key``, for a resolved one, and an ``acknowledge`` event for an acknowledged
    one, to the Events API v2 of one integration. It takes no undo of an
    acknowledgement: the Events API has none.

    Settings: ``routing_key`` (the integration key, required, secret) and ``events_url``
    (default PagerDuty's enqueue endpoint).

    The core paces events to PagerDuty's documented 120 a minute per routing key
    (:attr:`pace`), across every process sharing the store.
    """

    name = "pagerduty"
    secret_keys = frozenset({"routing_key"})
    setting_keys = frozenset({"routing_key", "events_url"})
    pace = (120, 60.0)
    accepts_acknowledgements = True

    def __init__(self, routing_key: Secret, events_url: str = EVENTS_URL) -> None:
        self._routing_key = routing_key
        self._events_url = events_url

    @classmethod
    def from_settings(cls, settings: ChannelSettings) -> Self:
        """Build the channel: ``routing_key`` must be 32 letters and digits, ``events_url``
        an absolute http(s) URL.
        """
        key = settings.require_text("routing_key").strip()
        if len(key) != 32:
            raise settings.problem(
                "routing_key",
                "must be the 32-character integration key of a PagerDuty Events API v2 "
                f"integration (this one has {len(key)} characters)",
            )
        if not _ROUTING_KEY.fullmatch(key):
            raise settings.problem(
                "routing_key",
                "must be the integration key of a PagerDuty Events API v2 integration: "
                "32 letters and digits only",
            )
        url = settings.text("events_url", EVENTS_URL).strip()
        try:
            parts = urllib.parse.urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError on a malformed port
        except ValueError:
            raise settings.problem("events_url", "is not a valid URL") from None
        if parts.scheme not in {"http", "https"} or not parts.hostname or " " in url:
            raise settings.problem("events_url", "must be an absolute http:// or https:// URL")
        return cls(Secret(key), url)

    async def send(self, alert: Alert, context: SendContext) -> Outcome:
        """Post the alert's event and classify PagerDuty's answer: 2xx delivered, 429 and
        5xx transient (after Retry-After), other 4xx permanent.
        """
        if not self.accepts(alert.status):
            return Outcome.permanent(f"PagerDuty's Events API has no {alert.status.value} event")
        key = self._routing_key.reveal()
        event = render_event(alert, key)
        try:
            response = await _post(context, self._events_url, event)
        except httpx.TimeoutException as exc:
            return Outcome.transient(f"{type(exc).__name__}: no answer in {context.timeout:g}s")
        except httpx.TransportError as exc:
            return Outcome.transient(f"{type(exc).__name__}: connection failed")
        outcome = classify_response(response)
        if outcome.kind is OutcomeKind.DELIVERED:
            return Outcome.delivered(
                f"HTTP {response.status_code}: {event['event_action']}",
                status_code=response.status_code,
            )
        # PagerDuty never quotes the routing key back; a proxy or a test server may.
        excerpt = _mask(response.text[: _BODY_EXCERPT + len(key)], key)[:_BODY_EXCERPT].strip()
        detail = f"HTTP {response.status_code}" + (f": {excerpt}" if excerpt else "")
        return Outcome(
            kind=outcome.kind,
            detail=detail,
            retry_after=outcome.retry_after,
            status_code=outcome.status_code,
        )

    def __repr__(self) -> str:
        return (
            f"PagerDutyChannel(routing_key={self._routing_key!r}, events_url={self._events_url!r})"
        )


async def _post(context: SendContext, url: str, event: Mapping[str, Any]) -> httpx.Response:
    """POST ``event`` as JSON with the shared client.

    Not :func:`chaperone.channels.http.post_json`: that takes the URL as a Secret, which
    would mask PagerDuty's public endpoint in every log line and in ``config show``.
    """
    return await context.http.post(url, json=dict(event), timeout=context.timeout)


def _mask(text: str, key: str) -> str:
    """``text`` with the routing key, and any piece of it of 8 characters or more, masked."""
    text = text.replace(key, _MASK)
    for length in range(len(key) - 1, _MIN_FRAGMENT - 1, -1):
        for start in range(len(key) - length + 1):
            piece = key[start : start + length]
            if piece in text:
                text = text.replace(piece, _MASK)
    return text
