"""The validated settings object every other piece reads."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import attrs

__all__ = ["DeliverySettings", "RateLimitSettings", "Settings", "Thresholds"]

DEFAULT_CHANNELS = ("log", "database")


@attrs.frozen(kw_only=True)
class Thresholds:
    """The seed's alert thresholds."""

    error_rate: float = 10.0
    """Percent of finished jobs that failed, over the window."""
    response_time: timedelta = timedelta(seconds=300)
    """Average job duration over the window."""
    queue_length: int = 1000
    """Jobs waiting in a queue."""
    window: timedelta = timedelta(minutes=5)
    """The sliding window error rate and response time are measured over (to the minute)."""
    min_jobs: int = 5
    """Fewer finished jobs than this in the window: no error-rate or response-time verdict."""


@attrs.frozen(kw_only=True)
class RateLimitSettings:
    """At most one alert per type and key per window."""

    default: timedelta = timedelta(seconds=300)
    per_type: Mapping[str, timedelta] = attrs.field(factory=dict)

    def window_for(self, alert_type: str) -> timedelta:
        """Return the window that applies to ``alert_type``."""
        return self.per_type.get(alert_type, self.default)


@attrs.frozen(kw_only=True)
class DeliverySettings:
    """How hard a channel is tried before a delivery counts as failed."""

    timeout: timedelta = timedelta(seconds=10)
    """Longest a single send may take."""
    max_attempts: int = 3
    """Sends per alert and channel, the first included."""
    max_backoff: timedelta = timedelta(seconds=30)
    """Longest wait between two attempts (a service's Retry-After may ask for more)."""


@attrs.frozen(kw_only=True)
class Settings:
    """Everything configurable, validated once at start-up.

    Built by :func:`chaperone.config.load_settings` from defaults < TOML file < ``.env``
    < environment. ``sources`` says where each setting came from, by its dotted name;
    ``environ`` is the merged environment (``.env`` under the real one) that channels
    read their own variables from, with ``environ_sources`` naming where each came from.
    """

    enabled: bool = True
    channels: tuple[str, ...] = DEFAULT_CHANNELS
    recipients: tuple[str, ...] = ()
    thresholds: Thresholds = Thresholds()
    rate_limit: RateLimitSettings = RateLimitSettings()
    delivery: DeliverySettings = DeliverySettings()
    store_url: str = "memory://"
    app_url: str | None = None
    log_format: str = "auto"
    log_level: str = "info"
    disabled_plugins: tuple[str, ...] = ()
    history_limit: int = 10_000
    channel_sections: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)
    """``[channels.<name>]`` tables from the TOML file."""
    config_file: str | None = None
    environ: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    environ_sources: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    sources: Mapping[str, str] = attrs.field(factory=dict, repr=False)

    def source_of(self, setting: str) -> str:
        """Say where ``setting`` (a dotted name such as ``alerting.enabled``) came from."""
        return self.sources.get(setting, "default")
