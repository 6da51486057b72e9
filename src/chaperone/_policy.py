"""How one destination is delivered to: its identity in the store, its documented rate,
its retries and its fallback channel.

The application's ``[delivery]`` settings apply to every channel; a channel's own section
(``[channels.slack] max_attempts = 5``, or ``CHAPERONE_SLACK_MAX_ATTEMPTS=5``) and a
route's settings for it override them for that channel. The keys are the same everywhere:
``timeout``, ``max_attempts``, ``max_backoff``, ``max_total`` and ``fallback``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

import attrs

from chaperone.channels._base import Channel, ChannelSettings
from chaperone.config._parsing import parse_duration_setting, parse_int

__all__ = ["CORE_KEYS", "DeliveryPolicy", "delivery_policy", "destination_id"]

T = TypeVar("T")

CORE_KEYS: Final = frozenset({"fallback", "max_attempts", "max_backoff", "max_total", "timeout"})
"""Channel settings the core reads for itself (how to deliver), not the channel (where)."""


@attrs.frozen(kw_only=True)
class DeliveryPolicy:
    """How the core delivers to one destination."""

    destination_id: str
    """``<channel>:<hash of its settings>``: what holds and rate slots in the store are
    kept under. Two routes posting to one webhook share it; the secret never shows."""
    timeout: float
    """Seconds one send may take."""
    max_attempts: int
    """Sends per alert, the first included, across every process that tries it."""
    max_backoff: float
    """Longest wait between two attempts (Retry-After may ask for more)."""
    max_total: float
    """Seconds from an alert's entry in the outbox after which it is not tried again."""
    pace: tuple[int, float] | None = None
    """At most ``requests`` sends ``per`` seconds to this destination (the channel's
    :attr:`~chaperone.channels.Channel.pace`)."""
    fallback: str | None = None
    """The channel that gets the alert when this one failed for good."""


def destination_id(channel: str, values: Mapping[str, Any]) -> str:
    """Name a destination by its channel and a hash of the settings that say where it
    sends (the core's own keys left out), never by a setting itself: a webhook URL is a
    secret.
    """
    identity = {key: value for key, value in values.items() if key not in CORE_KEYS}
    text = json.dumps(identity, sort_keys=True, default=str)
    return f"{channel}:{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def _positive_seconds(value: Any) -> float:
    seconds = parse_duration_setting(value).total_seconds()
    if seconds <= 0:
        raise ValueError(f"expected a duration above zero, got {value!r}")
    return seconds


def _seconds(value: Any) -> float:
    return parse_duration_setting(value).total_seconds()


def _channel_name(value: Any) -> str:
    name = str(value).strip().lower()
    if not name:
        raise ValueError("expected a channel name")
    return name


def delivery_policy(channel_class: type[Channel], settings: ChannelSettings) -> DeliveryPolicy:
    """The policy of the destination whose merged settings are ``settings``; ConfigError
    naming the setting when an override is malformed.
    """
    app = settings.app.delivery

    def read(key: str, parse: Callable[[Any], T], default: T) -> T:
        raw = settings.get(key)
        if raw is None:
            return default
        try:
            return parse(raw)
        except ValueError as exc:
            raise settings.problem(key, str(exc)) from None

    return DeliveryPolicy(
        destination_id=destination_id(channel_class.name, settings.values),
        timeout=read("timeout", _positive_seconds, app.timeout.total_seconds()),
        max_attempts=read(
            "max_attempts", lambda value: parse_int(value, minimum=1), app.max_attempts
        ),
        max_backoff=read("max_backoff", _seconds, app.max_backoff.total_seconds()),
        max_total=read("max_total", _positive_seconds, app.max_total.total_seconds()),
        pace=channel_class.pace,
        fallback=read("fallback", _channel_name, None),
    )
