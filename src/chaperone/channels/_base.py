"""The channel contract: what a channel plugin implements and what the core gives it."""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Self, overload

import attrs
import httpx

from chaperone._alerts import Alert, AlertStatus
from chaperone._clock import Clock
from chaperone._exceptions import ConfigError
from chaperone._secrets import Secret
from chaperone._verdicts import Outcome
from chaperone.config._parsing import describe_kind

if TYPE_CHECKING:
    from chaperone.config import Settings
    from chaperone.store import Store

__all__ = ["Channel", "ChannelSettings", "SendContext"]


@attrs.frozen(kw_only=True)
class ChannelSettings:
    """A channel's own settings, merged from ``[channels.<name>]`` in TOML, then its
    environment variables (``CHAPERONE_<NAME>_<KEY>`` and the channel's aliases), then the
    route's overrides; plus the application settings and the store.

    ``origins`` names, for each key, the setting it was read from and its source, so
    :meth:`problem` can build an error a person can act on.
    """

    channel: str
    values: Mapping[str, Any]
    origins: Mapping[str, tuple[str, str]]
    app: Settings
    store: Store
    clock: Clock
    aliases: Mapping[str, str] = attrs.field(factory=dict)
    """Settings key → the channel's customary environment variable (``host`` →
    ``MAIL_HOST``), used to name an unset key in errors."""

    def get(self, key: str, default: Any = None) -> Any:
        """Return the value of ``key`` (stripped when text), or ``default`` when unset.

        A value is text, a number, true/false, or an array of those; anything else (a
        TOML table, date or time) is a ConfigError naming the key.
        """
        value = self.values.get(key)
        if isinstance(value, str):
            value = value.strip()
        elif value is not None and not _plain(value):
            raise self.problem(
                key, f"expected text, a number, true/false or an array, got {describe_kind(value)}"
            )
        return default if value is None or value == "" else value

    def require(self, key: str) -> Any:
        """Return the value of ``key``; raise ConfigError naming it when it is unset."""
        value = self.get(key)
        if value is None:
            raise self.problem(key, "is required")
        return value

    @overload
    def text(self, key: str) -> str | None: ...

    @overload
    def text(self, key: str, default: str) -> str: ...

    def text(self, key: str, default: str | None = None) -> str | None:
        """Return the value of ``key`` as text (a number is read as its text), or
        ``default`` when unset; raise ConfigError naming the key for an array, true/false
        or a TOML table or date.
        """
        value = self.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.problem(key, f"expected text, got {describe_kind(value)}")
        return str(value)

    def require_text(self, key: str) -> str:
        """Return the value of ``key`` as :meth:`text` does; raise ConfigError naming it
        when it is unset.
        """
        value = self.text(key)
        if value is None:
            raise self.problem(key, "is required")
        return value

    def secret(self, key: str) -> Secret:
        """Return the required secret ``key`` wrapped so it never prints."""
        return Secret(self.require_text(key))

    def setting_name(self, key: str) -> str:
        """The name a person would set ``key`` by: where it came from when set, else the
        channel's customary variable for it (``MAIL_HOST``), else ``CHAPERONE_<NAME>_<KEY>``.
        """
        if key in self.origins:
            return self.origins[key][0]
        default = f"CHAPERONE_{self.channel.upper().replace('-', '_')}_{key.upper()}"
        return self.aliases.get(key, default)

    def problem(self, key: str, message: str) -> ConfigError:
        """Build the ConfigError for a bad or missing ``key``. Never quotes the value."""
        name, source = self.origins.get(key, (self.setting_name(key), "not set"))
        return ConfigError.single(name, source, message)


@attrs.frozen(kw_only=True)
class SendContext:
    """What the core lends a channel for one send."""

    http: httpx.AsyncClient
    """The shared HTTP client (connection pooling across channels)."""
    clock: Clock
    timeout: float
    """Seconds this send may take; the core cancels it past that."""
    attempt: int = 1
    """1 for the first try, 2 for the first retry, and so on."""
    route: str = "default"
    """The route that sent the alert here."""
    fallback_of: str | None = None
    """For a fallback delivery, the channel that failed for good and that this channel
    stands in for (a channel may say so in its message); None otherwise."""


def _plain(value: Any) -> bool:
    """Whether ``value`` is text, a number, true/false, or an array of those."""
    if isinstance(value, list | tuple):
        return all(isinstance(item, str | int | float) for item in value)
    return isinstance(value, str | int | float)


class Channel(abc.ABC):
    """Base class of every channel, built-in or from a plugin.

    A channel is built once from its settings (and must validate them there: a malformed
    webhook URL is a ConfigError at start-up, not a failure at 3 a.m.), then asked to
    :meth:`send` alerts. It renders each alert within the service's limits and classifies
    the result as delivered, transient or permanent; it never puts a secret in a log line,
    an exception or an outcome's detail.
    """

    name: ClassVar[str]
    """What config and routes call this channel (``slack``)."""
    env_aliases: ClassVar[Mapping[str, str]] = {}
    """Extra environment variables read into settings keys, e.g. ``{"MAIL_HOST": "host"}``."""
    secret_keys: ClassVar[frozenset[str]] = frozenset()
    """Settings keys whose values are secrets: masked wherever settings are shown."""
    setting_keys: ClassVar[frozenset[str] | None] = None
    """Every key of the channel's own settings (``webhook_url``), besides the delivery
    settings every channel takes (``timeout``, ``max_attempts``, ``fallback``...). When
    the class declares them, any other key under ``[channels.<name>]``, in a route's
    settings for the channel or as ``CHAPERONE_<NAME>_<KEY>`` stops start-up with an error
    naming the closest declared one. Only the class's own declaration counts: a channel
    that declares none (one written before channels declared their keys, or a subclass
    that does not declare its own) is not checked."""
    pace: ClassVar[tuple[int, float] | None] = None
    """The service's documented rate per destination, as (requests, per seconds): Slack's
    ``(1, 1.0)`` per webhook. The core spaces sends to one destination (one set of
    settings: one webhook URL, one routing key) to it, across every process sharing the
    store. None: no known rate (a ``429`` with ``Retry-After`` still holds the
    destination)."""

    accepts_acknowledgements: ClassVar[bool] = False
    """Whether the channel takes an acknowledged alert (``AlertStatus.ACKNOWLEDGED``),
    passed on when a person acknowledges an incident it carried (PagerDuty's
    ``acknowledge`` event). Channels that do not opt in never receive one."""
    accepts_unacknowledgements: ClassVar[bool] = False
    """Whether the channel takes an acknowledgement's undoing
    (``AlertStatus.UNACKNOWLEDGED``), as Opsgenie's ``unacknowledge`` does."""

    @classmethod
    def accepts(cls, status: AlertStatus) -> bool:
        """Whether the channel takes alerts of ``status``: every channel takes firing and
        resolved alerts; acknowledgements and their undoing only those that opt in.
        """
        if status is AlertStatus.ACKNOWLEDGED:
            return cls.accepts_acknowledgements
        if status is AlertStatus.UNACKNOWLEDGED:
            return cls.accepts_unacknowledgements
        return True

    @classmethod
    @abc.abstractmethod
    def from_settings(cls, settings: ChannelSettings) -> Self:
        """Build the channel, validating its settings; raise ConfigError when they are bad."""

    @abc.abstractmethod
    async def send(self, alert: Alert, context: SendContext) -> Outcome:
        """Deliver one alert and say how it went. May raise; the core classifies that."""

    async def aclose(self) -> None:  # noqa: B027 - most channels hold nothing to release
        """Release what the channel holds (connections, files)."""
