"""The ``discord`` channel: one webhook message, with one embed (or a few), per alert."""

from __future__ import annotations

import json
import math
import re
import urllib.parse
from typing import Any, Final, Self

import attrs
import httpx

from chaperone.channels import (
    Alert,
    Channel,
    ChannelSettings,
    Outcome,
    Secret,
    SendContext,
    classify_response,
    post_json,
    retry_after_seconds,
)
from chaperone_discord._limits import USERNAME
from chaperone_discord._render import render

__all__ = ["DiscordChannel", "discord_retry_after"]

_DISCORD_HOSTS: Final = frozenset(
    f"{prefix}{domain}"
    for prefix in ("", "ptb.", "canary.")
    for domain in ("discord.com", "discordapp.com")
)
_LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1"})
_WEBHOOK_PATH: Final = re.compile(r"/api(?:/v\d+)?/webhooks/\d+/[\w-]+/?")
_FORBIDDEN_IN_USERNAME: Final = ("clyde", "discord")
_MAX_SECONDS: Final = 3600.0
"""The longest wait taken from a 429 (the core reads a longer Retry-After the same way)."""
_MILLISECONDS_ABOVE: Final = 1000.0
"""A body ``retry_after`` above this many "seconds" was written in milliseconds."""
_EXPECTED: Final = (
    "must be a Discord webhook URL: https://discord.com/api/webhooks/ then the webhook's id "
    "and token (in Discord: channel settings, Integrations, Webhooks, Copy Webhook URL)"
)
"""Said without a whole example URL, which the core's masking would hide as a secret."""


def _number(value: Any) -> float | None:
    """``value`` as a finite non-negative number of seconds, or None."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def discord_retry_after(response: httpx.Response) -> float | None:
    """How long a ``429`` from Discord says to wait, in seconds; None when it does not say.

    Discord says it twice: ``retry_after`` in the JSON body (seconds, a float) and the
    ``Retry-After`` header (seconds). The rule:

    - a body value over 1,000 is taken to be milliseconds (as some 429s have been
      reported to send): the header's value is used, else the body's divided by 1,000;
    - otherwise the longer of the two, so a retry is never early;
    - with neither, ``X-RateLimit-Reset-After``;
    - never more than an hour.
    """
    header = retry_after_seconds(response.headers.get("Retry-After"))
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    stated = _number(body.get("retry_after")) if isinstance(body, dict) else None
    if stated is not None and stated > _MILLISECONDS_ABOVE:
        stated = None if header is not None else stated / 1000
    known = [value for value in (stated, header) if value is not None]
    if not known:
        reset = _number(response.headers.get("X-RateLimit-Reset-After"))
        known = [reset] if reset is not None else []
    return min(max(known), _MAX_SECONDS) if known else None


def _bucket_wait(response: httpx.Response) -> float | None:
    """Seconds until the webhook's rate-limit bucket refills, when this answer used it up."""
    if response.headers.get("X-RateLimit-Remaining", "").strip() != "0":
        return None
    reset = _number(response.headers.get("X-RateLimit-Reset-After"))
    return None if reset is None else min(reset, _MAX_SECONDS)


def _split_query(url: str) -> tuple[str, dict[str, str]]:
    """``url`` without its query, and the query's parameters with ``wait=true`` (so
    Discord confirms with the message), ``thread_id`` and the like kept.

    The parameters travel apart from the URL because ``post_json`` hands httpx a
    ``params`` mapping, which replaces whatever query the URL had.
    """
    parts = urllib.parse.urlsplit(url)
    params = dict(urllib.parse.parse_qsl(parts.query))
    params["wait"] = "true"
    return urllib.parse.urlunsplit(parts._replace(query="")), params


class DiscordChannel(Channel):
    """Posts each alert to a Discord channel webhook as an embed.

    Settings: ``webhook_url`` (a secret; ``CHAPERONE_DISCORD_WEBHOOK_URL``), and
    optionally ``username`` and ``avatar_url`` to post under.

    ``2xx`` is delivered; ``429`` and ``5xx`` transient, after the wait Discord asks for
    (see :func:`discord_retry_after`); any other ``4xx`` permanent: ``401`` and ``403``
    are never retried, since Discord bans a sender that piles up invalid requests. When
    Discord says the webhook's bucket is empty (``X-RateLimit-Remaining: 0``), the
    delivered outcome carries the bucket's ``X-RateLimit-Reset-After`` as its
    ``retry_after``: the core then holds the webhook that long, across every process,
    instead of collecting a ``429``.
    """

    name = "discord"
    secret_keys = frozenset({"webhook_url"})
    setting_keys = frozenset({"webhook_url", "username", "avatar_url"})

    def __init__(
        self, webhook_url: Secret, *, username: str | None = None, avatar_url: str | None = None
    ) -> None:
        base, self._params = _split_query(webhook_url.reveal())
        self._url = Secret(base)
        self._username = username
        self._avatar_url = avatar_url

    def __repr__(self) -> str:
        return f"<DiscordChannel webhook_url={self._url!r} username={self._username!r}>"

    @classmethod
    def from_settings(cls, settings: ChannelSettings) -> Self:
        """Build the channel; ``webhook_url`` must be a Discord webhook URL (or an http URL
        on the loopback interface, for tests), ``username`` 1-80 characters without
        "discord" or "clyde", ``avatar_url`` an http(s) URL.
        """
        url = settings.require_text("webhook_url")
        try:
            parts = urllib.parse.urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError on a malformed port
        except ValueError:
            raise settings.problem("webhook_url", "is not a valid URL") from None
        host = (parts.hostname or "").lower()
        if host in _LOOPBACK_HOSTS:
            if parts.scheme not in {"http", "https"}:
                raise settings.problem("webhook_url", "must be an http:// or https:// URL")
        elif (
            parts.scheme != "https"
            or host not in _DISCORD_HOSTS
            or not _WEBHOOK_PATH.fullmatch(parts.path)
        ):
            raise settings.problem("webhook_url", _EXPECTED)
        username = settings.text("username")
        if username is not None:
            if len(username) > USERNAME:
                raise settings.problem("username", f"is longer than {USERNAME} characters")
            if any(word in username.lower() for word in _FORBIDDEN_IN_USERNAME):
                raise settings.problem("username", 'may not contain "discord" or "clyde"')
        avatar_url = settings.text("avatar_url")
        if avatar_url is not None:
            avatar = urllib.parse.urlsplit(avatar_url)
            if avatar.scheme not in {"http", "https"} or not avatar.netloc:
                raise settings.problem("avatar_url", "must be an http:// or https:// URL")
        return cls(Secret(url), username=username, avatar_url=avatar_url)

    async def send(self, alert: Alert, context: SendContext) -> Outcome:
        """Post the alert's embed and classify Discord's answer; the wait Discord asks
        for (a 429's, or an emptied bucket's) travels as the outcome's ``retry_after``.
        """
        payload = render(alert, username=self._username, avatar_url=self._avatar_url)
        outcome, response = await post_json(context, self._url, payload, params=self._params)
        if response is None:
            return outcome
        if response.status_code == 429:
            return classify_response(response, retry_after=discord_retry_after(response))
        wait = _bucket_wait(response)
        if wait and outcome.retry_after is None:
            outcome = attrs.evolve(outcome, retry_after=wait)
        return outcome
