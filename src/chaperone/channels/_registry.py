"""The channel registry: channel objects per destination, their delivery policies and
fallbacks, the HTTP client they share, and the book of their secret settings.

A destination's channel is built on first use from its settings (the channel's section
and environment, then the route's own settings) and cached by those settings, so two
routes that give Slack two webhooks get two channel objects. ``aclose()`` closes them
all and the HTTP client.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping

import attrs
import httpx
import structlog

from chaperone._clock import Clock
from chaperone._exceptions import ConfigProblem, UnknownChannelError
from chaperone._outbox import SecretBook
from chaperone._plugins import PluginHost
from chaperone._policy import DeliveryPolicy, delivery_policy
from chaperone._secrets import describe
from chaperone._verdicts import Destination
from chaperone.channels._base import Channel
from chaperone.channels._configure import channel_settings, package_for_channel
from chaperone.config import Settings
from chaperone.store import Store

__all__ = ["ChannelRegistry"]

_log = structlog.get_logger("chaperone")


@attrs.frozen
class _Target:
    """A destination's channel object and how it is delivered to."""

    channel: Channel
    policy: DeliveryPolicy


class ChannelRegistry:
    """Builds, caches and closes the channels of one running Chaperone."""

    def __init__(self, settings: Settings, store: Store, clock: Clock, plugins: PluginHost) -> None:
        """Nothing is built yet: each channel on first use (or by the config check)."""
        self.settings = settings
        self.store = store
        self.clock = clock
        self.plugins = plugins
        self._targets: dict[str, _Target] = {}
        self._lock = threading.Lock()
        self._http: httpx.AsyncClient | None = None
        self.secrets = self._secret_book()
        """The outbox's book of secret settings, taught every route's settings."""

    def channel_for(self, destination: Destination) -> Channel:
        """The channel object for a destination, built on first use (ConfigError if its
        settings are bad, UnknownChannelError if no plugin provides it).
        """
        return self._target(destination).channel

    def policy_for(self, destination: Destination) -> DeliveryPolicy:
        """How a destination is delivered to: its id in the store, timeout, attempts,
        backoff, total time, rate and fallback (errors as :meth:`channel_for`).
        """
        return self._target(destination).policy

    def _target(self, destination: Destination) -> _Target:
        cache_key = json.dumps(
            [destination.channel, dict(destination.settings)], sort_keys=True, default=str
        )
        with self._lock:
            target = self._targets.get(cache_key)
            if target is not None:
                return target
            channel_class = self.plugins.channel_classes.get(destination.channel)
            if channel_class is None:
                raise UnknownChannelError(self.unknown_channel(destination.channel))
            settings = channel_settings(
                channel_class,
                app=self.settings,
                store=self.store,
                clock=self.clock,
                route=destination.route,
                overrides=destination.settings,
            )
            policy = delivery_policy(channel_class, settings)
            target = _Target(channel_class.from_settings(settings), policy)
            self._targets[cache_key] = target
            return target

    def route_settings(self, route: str, channel: str) -> Mapping[str, object]:
        """The settings route ``route`` gives ``channel`` (empty for the default route or
        a route that names none).
        """
        for configured in self.settings.routes:
            if configured.name == route:
                return dict(configured.channel_settings.get(channel, {}))
        return {}

    def fallback_for(self, destination: Destination) -> str | None:
        """The fallback channel of a destination, read even when its channel cannot be
        built (a bad setting, a plugin gone): None when it has none.
        """
        try:
            return self.policy_for(destination).fallback
        except Exception:
            channel_class = self.plugins.channel_classes.get(destination.channel)
            raw = destination.settings.get("fallback")
            if raw is None and channel_class is not None:
                raw = channel_settings(
                    channel_class, app=self.settings, store=self.store, clock=self.clock
                ).get("fallback")
            if raw is None:
                raw = self.settings.channel_sections.get(destination.channel, {}).get("fallback")
            if raw is None:
                return None
            return str(raw).strip().lower() or None

    def unknown_channel(self, name: str, route: str | None = None) -> ConfigProblem:
        """The problem of a channel no installed plugin provides, with how to get it
        (``route``: where a route, rather than the default channels, names it).
        """
        installed = ", ".join(sorted(self.plugins.channel_classes)) or "none"
        owner = self.plugins.owner_of(name)
        if owner is not None and owner.error:
            hint = f"the plugin {owner.name!r} is installed but broken ({owner.error})"
        elif owner is not None and owner.disabled and owner.builtin:
            hint = f"the built-in plugin {owner.name!r} is disabled (CHAPERONE_DISABLE_PLUGINS)"
        else:
            hint = f"install it with: pip install {package_for_channel(name)}"
        key, source = (
            (f"{route}.channels", self.settings.config_file or "config file")
            if route
            else ("CHAPERONE_ALERT_CHANNELS", self.settings.source_of("alerting.channels"))
        )
        return ConfigProblem(
            key=key,
            source=source,
            message=f"no installed plugin provides channel {name!r}; {hint} "
            f"(installed channels: {installed})",
        )

    def _secret_book(self) -> SecretBook:
        def is_secret(channel: str, key: str) -> bool:
            channel_class = self.plugins.channel_classes.get(channel)
            return channel_class is not None and key in channel_class.secret_keys

        book = SecretBook(is_secret)
        for route in self.settings.routes:
            for values in route.channel_settings.values():
                book.learn_all(values.values())
        return book

    @property
    def http_client(self) -> httpx.AsyncClient:
        """The HTTP client every channel shares (lives on the delivery loop)."""
        if self._http is None:
            self._http = httpx.AsyncClient(
                timeout=self.settings.delivery.timeout.total_seconds(),
                follow_redirects=False,
                headers={"User-Agent": "chaperone"},
            )
        return self._http

    async def aclose(self) -> None:
        """Close every channel built (one that fails to is logged) and the HTTP client."""
        for target in list(self._targets.values()):
            try:
                await target.channel.aclose()
            except Exception as exc:
                _log.warning("channel failed to close", error=describe(exc))
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def clear(self) -> None:
        """Forget the channels built (after :meth:`aclose`)."""
        self._targets.clear()
