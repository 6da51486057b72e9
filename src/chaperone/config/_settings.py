"""The validated settings object every other piece reads."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from datetime import time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import attrs

from chaperone._alerts import Priority
from chaperone._matching import AlertMatcher
from chaperone.schedules._model import Schedule

__all__ = [
    "MAX_DIGEST_SIZE",
    "SEED_ESCALATION",
    "DeliverySettings",
    "EscalationSettings",
    "GroupingSettings",
    "HealthSettings",
    "PrioritySettings",
    "RateLimitSettings",
    "RecurringWindow",
    "Route",
    "Settings",
    "Thresholds",
]

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


MAX_DIGEST_SIZE = 20
"""The most alerts one digest message may list: Slack shows no more fields."""

SEED_ESCALATION: tuple[timedelta, ...] = (
    timedelta(0),
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(minutes=30),
    timedelta(hours=1),
)
"""The seed's escalating delays: at once, then no repeat sooner than 5 min, 15 min, 30 min,
then every hour."""


@attrs.frozen(kw_only=True)
class EscalationSettings:
    """Per alert type, escalating delays instead of the fixed rate-limit window.

    ``delays[n]`` is the least time between the n-th delivery and the next; the last delay
    repeats. The count of deliveries lives ``memory`` after the last one and resets when
    the incident resolves.
    """

    per_type: Mapping[str, tuple[timedelta, ...]] = attrs.field(factory=dict)
    memory: timedelta = timedelta(hours=24)

    def delays_for(self, alert_type: str) -> tuple[timedelta, ...] | None:
        """The delays of ``alert_type``, or None when it uses the fixed window."""
        return self.per_type.get(alert_type)


@attrs.frozen(kw_only=True)
class GroupingSettings:
    """Alerts sharing a group key inside a window: the first ones go out one by one, the
    rest are held for a digest.
    """

    enabled: bool = True
    window: timedelta = timedelta(minutes=10)
    """How long a group stays open after its first alert."""
    after: int = 5
    """The ``after``-th alert of a group in a window, and every later one, is held."""
    by: tuple[str, ...] = ("type", "job_class")
    """Alert fields (or label names) whose values make the group key."""
    flush_at: int = 100
    """A digest goes out early once this many alerts are held."""
    digest_size: int = MAX_DIGEST_SIZE
    """At most this many alerts are listed in one digest message (1 to 20); more make
    several."""


@attrs.frozen(kw_only=True)
class PrioritySettings:
    """Rules giving an alert its priority from its job class (first match wins, in the
    order critical, high, normal, low).
    """

    critical_jobs: tuple[str, ...] = ()
    """Job classes (exact names or globs) whose alerts are critical."""
    patterns: Mapping[Priority, tuple[str, ...]] = attrs.field(factory=dict)
    """Job class globs per priority."""
    low_digest_only: bool = False
    """Hold every low-priority alert for the digest instead of sending the first ones."""


@attrs.frozen(kw_only=True)
class Route:
    """One ``[[alerting.routes]]`` entry: which alerts, which channels, how."""

    name: str
    match: AlertMatcher = attrs.field(factory=AlertMatcher)
    channels: tuple[str, ...] = ()
    channel_settings: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict, repr=False)
    """Channel name → settings that override the channel's own for this route (left out
    of the repr: they hold webhook URLs)."""
    runbook_url: str | None = None
    continue_matching: bool = False
    """Also try the routes after this one (TOML ``continue = true``)."""


@attrs.frozen(kw_only=True)
class RecurringWindow:
    """One ``[[alerting.maintenance]]`` entry: a window that recurs on some weekdays."""

    name: str
    weekdays: frozenset[int]
    """Days the window starts on, Monday = 0."""
    start: time
    end: time
    """When ``end`` is not after ``start`` the window runs past midnight."""
    timezone: ZoneInfo
    match: AlertMatcher = attrs.field(factory=AlertMatcher)
    reason: str = ""
    summary: bool = True


@attrs.frozen(kw_only=True)
class HealthSettings:
    """When the alerting system itself counts as unhealthy, and how it is served."""

    failure_threshold: float = 5.0
    """Percent of failed deliveries at or above which ``chaperone health`` exits 1."""
    window: timedelta = timedelta(hours=1)
    """The recent stretch the failure rate is measured over."""
    host: str = "127.0.0.1"
    """Where ``chaperone serve`` listens (loopback unless told otherwise)."""
    port: int = 9464
    token: str | None = attrs.field(default=None, repr=False)
    """A bearer token ``chaperone serve`` requires, when set (a secret)."""
    require_monitor: bool = True
    """Whether health needs a ``chaperone monitor`` that ticked recently: without one, a
    job stuck in another process is never detected."""
    outbox_max_age: timedelta = timedelta(minutes=10)
    """Health fails while an outbox entry has waited longer than this to be delivered."""


@attrs.frozen(kw_only=True)
class DeliverySettings:
    """How hard a channel is tried before a delivery counts as failed."""

    timeout: timedelta = timedelta(seconds=10)
    """Longest a single send may take."""
    max_attempts: int = 3
    """Sends per alert and channel, the first included."""
    max_backoff: timedelta = timedelta(seconds=30)
    """Longest wait between two attempts (a service's Retry-After may ask for more)."""
    max_total: timedelta = timedelta(hours=1)
    """How long an alert is tried, from when it entered the outbox: past that, the
    delivery has failed for good (and goes to the channel's fallback, if any)."""
    exit_grace: timedelta = timedelta(seconds=5)
    """How long a process that is ending (``chaperone run``, ``test-alerts``) waits for the
    deliveries still in flight; what is left stays in the outbox for ``chaperone
    monitor``."""


DEFAULT_PREFIX = "/chaperone"
"""Where the web app's pages sit unless ``serve.prefix`` says otherwise."""
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


class Role(StrEnum):
    """What a signed-in person may do: look (viewer) or also act (responder)."""

    VIEWER = "viewer"
    RESPONDER = "responder"


@attrs.frozen
class UserEntry:
    """One ``[[serve.users]]`` entry: a name, a password hash (a secret), a role."""

    name: str
    password_hash: str = attrs.field(repr=False)
    role: Role = Role.VIEWER


@attrs.frozen(kw_only=True)
class ServeSettings:
    """The web app's settings beyond where it listens (``health.host``/``port``/``token``)."""

    prefix: str = DEFAULT_PREFIX
    """Where the app's pages sit ("" for the root)."""
    request_timeout: float = 10.0
    """Seconds a connection has to send a complete request head."""
    idle_timeout: float = 5.0
    """Seconds an idle keep-alive connection is kept open."""
    max_connections: int = 1000
    """Connections served at once; more get 503."""
    max_request_head: int = 16 * 1024
    """Bytes a request line plus headers may take (414 / 431 past it)."""
    users: tuple[UserEntry, ...] = ()
    trusted_header: str | None = None
    """A header naming the signed-in user, set by a reverse proxy."""
    trusted_proxies: tuple[IPNetwork, ...] = _LOOPBACK
    """Addresses the trusted header is honoured from."""
    proxy_role: Role = Role.VIEWER
    """The role of a proxy-named user who is not among ``users``."""
    session_secret: str | None = attrs.field(default=None, repr=False)
    """The key that signs session cookies (a secret); random per start when unset."""
    ping_key: str | None = attrs.field(default=None, repr=False)
    """The key every check-in may use (a secret)."""
    ping_keys: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    """Job name → its own check-in key (secrets)."""
    secure_cookies: bool = False
    """Mark the session cookie Secure even when the request came over plain HTTP (behind a
    proxy that ends TLS)."""

    @property
    def authentication_configured(self) -> bool:
        """Whether any way of signing in is configured (besides the serve token)."""
        return bool(self.users or self.trusted_header)


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
    escalation: EscalationSettings = EscalationSettings()
    grouping: GroupingSettings = GroupingSettings()
    priority: PrioritySettings = PrioritySettings()
    routes: tuple[Route, ...] = ()
    maintenance: tuple[RecurringWindow, ...] = ()
    """Recurring maintenance windows from the config file."""
    maintenance_summary: bool = True
    """Deliver a summary of what a maintenance window suppressed when it ends."""
    schedules: tuple[Schedule, ...] = ()
    """The ``[[schedules]]`` of the config file (declarations in code and on the command
    line live in the store: see :func:`chaperone.schedules.all_schedules`)."""
    runbooks: Mapping[str, str] = attrs.field(factory=dict)
    """Alert type → runbook URL shown with its alerts."""
    delivery: DeliverySettings = DeliverySettings()
    health: HealthSettings = HealthSettings()
    serve: ServeSettings = ServeSettings()
    """The web app's settings (where it listens is under :attr:`health`)."""
    store_url: str = "memory://"
    abandoned_after: timedelta = timedelta(seconds=60)
    """How long a supervising process (``chaperone run``, a job's own process) may go
    without vouching for its running jobs before they count as abandoned."""
    capture_output: bool = True
    """Whether ``chaperone run`` passes its command's output through pipes and keeps its
    end for a failed run's ``job_failed`` (else the command writes to ``chaperone run``'s
    own standard output and error); ``--capture-output`` and ``--no-capture-output`` say
    otherwise for one run."""
    store_probe_interval: timedelta = timedelta(seconds=5)
    """While the store fails, how often a process tries it again (meanwhile it works from
    memory)."""
    app_url: str | None = None
    log_format: str = "auto"
    log_level: str = "info"
    disabled_plugins: tuple[str, ...] = ()
    history_limit: int = 10_000
    channel_sections: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict, repr=False)
    """``[channels.<name>]`` tables from the TOML file (left out of the repr: secrets)."""
    plugin_sections: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict, repr=False)
    """``[plugins.<name>]`` tables from the TOML file (left out of the repr: secrets)."""
    plugin_values: Mapping[str, Any] = attrs.field(factory=dict, repr=False)
    """Plugin name → its validated settings (see :meth:`plugin`), filled in once the
    plugins are known."""
    config_file: str | None = None
    environ: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    environ_sources: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    sources: Mapping[str, str] = attrs.field(factory=dict, repr=False)

    def plugin(self, name: str) -> Any:
        """The validated settings of plugin ``name``: an instance of the attrs class it
        registered through ``chaperone_register_settings``. KeyError when the plugin
        registered none, or its settings are invalid (a validated runtime has refused
        them at start-up).
        """
        try:
            return self.plugin_values[name]
        except KeyError:
            raise KeyError(f"no validated settings for plugin {name!r}") from None

    def source_of(self, setting: str) -> str:
        """Say where ``setting`` (a dotted name such as ``alerting.enabled``) came from."""
        return self.sources.get(setting, "default")
