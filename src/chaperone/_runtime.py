"""The running Chaperone: settings, store, clock, plugins and channels in one object.

Build it once at start-up (``Runtime.from_environment()``); that validates the whole
configuration, every configured channel included, so a bad setting fails there. Then
``dispatch(event)`` from any thread or ``await adispatch(event)`` from any event loop;
neither ever raises into the caller.

Deliveries run as tasks on the runtime's own loop: a caller waits for them as long as it
says (``wait``), and ``close()`` waits for those still in flight at most
``delivery.exit_grace``, leaving the rest in the outbox.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import attrs
import httpx
import structlog

from chaperone._alerts import Alert
from chaperone._clock import Clock, SystemClock
from chaperone._degraded import SelfWatch
from chaperone._delivery import DeliveryResult, drain, settle
from chaperone._events import Event
from chaperone._exceptions import ConfigError, ConfigProblem, UnknownChannelError
from chaperone._gates import DeliveryGates
from chaperone._inflight import InFlight
from chaperone._logging import configure_logging
from chaperone._loop import BackgroundLoop
from chaperone._outbox import Outbox, SecretBook
from chaperone._pipeline import (
    AlertReport,
    DispatchReport,
    process_alert,
    process_event,
    process_events,
)
from chaperone._plugins import PluginHost
from chaperone._policy import DeliveryPolicy, delivery_policy
from chaperone._secrets import MASKER
from chaperone._verdicts import Destination
from chaperone.channels._base import Channel
from chaperone.channels._configure import channel_settings
from chaperone.config import Settings, bind_plugin_settings, load_settings
from chaperone.config._unknown import unknown_names
from chaperone.store import (
    ResilientStore,
    Store,
    StoreChange,
    StoreState,
    default_store_url,
    open_resilient_store,
)

__all__ = ["Runtime", "package_for_channel"]

_log = structlog.get_logger("chaperone")
T = TypeVar("T")


def package_for_channel(name: str) -> str:
    """The distribution that provides channel ``name`` by our naming rule."""
    return f"chaperone-{name}"


@attrs.frozen
class _Target:
    """A destination's channel object and how it is delivered to."""

    channel: Channel
    policy: DeliveryPolicy


class Runtime:
    """Chaperone, configured and running."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        store: Store | None = None,
        plugins: PluginHost | None = None,
        validate: bool = True,
    ) -> None:
        """Assemble the runtime; with ``validate`` (the default) build every configured
        channel now, raising ConfigError for all that is wrong.
        """
        if not structlog.is_configured():
            configure_logging(settings)
        self.clock: Clock = clock or SystemClock()
        self.plugins = plugins or PluginHost(disabled=settings.disabled_plugins)
        self.settings = bind_plugin_settings(settings, self.plugins.settings_classes)
        """The settings, each plugin's own (``settings.plugin(name)``) among them."""
        self.store: Store = store or open_resilient_store(
            settings.store_url,
            self.clock,
            key="CHAPERONE_STORE",
            source=settings.source_of("store.url"),
            probe_interval=settings.store_probe_interval.total_seconds(),
        )
        """The configured store, behind a :class:`~chaperone.store.ResilientStore` (when
        the runtime opened it): a store that fails is worked around from memory."""
        self._loop = BackgroundLoop()
        self.in_flight = InFlight()
        """The deliveries running on the runtime's loop (:mod:`chaperone._inflight`)."""
        self.delivery_gates = DeliveryGates()
        """Send slots per destination and in total (:mod:`chaperone._gates`)."""
        self._http: httpx.AsyncClient | None = None
        self._channels: dict[str, _Target] = {}
        self._channels_lock = threading.Lock()
        self.outbox = Outbox(self.store, self.clock, secrets=self._secret_book())
        """Where every routed alert waits until its channel confirmed it (see
        :mod:`chaperone._outbox`)."""
        self._queue_length_sources: dict[str, Callable[[], int]] = {}
        self.self_watch = SelfWatch(self)
        """Chaperone's own failing parts, alerted as ``chaperone_degraded``."""
        self._watch_the_store()
        if validate:
            try:
                self.check()
            except BaseException:
                # Release what was built; the store too when it was opened here.
                self._loop.run(self._aclose_resources())
                self._loop.stop()
                if store is None:
                    self.store.close()
                raise

    @classmethod
    def from_environment(
        cls,
        environ: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        *,
        clock: Clock | None = None,
        setup_logging: bool = True,
    ) -> Self:
        """Load settings (defaults < TOML < ``.env`` < environment), set up logging, and
        build a validated runtime on the configured store (SQLite by default).
        """
        settings = load_settings(environ, cwd, default_store_url=default_store_url())
        if setup_logging:
            configure_logging(settings)
        return cls(settings, clock=clock)

    # -- channels --------------------------------------------------------------------

    def check(self) -> None:
        """Build every configured channel; raise one ConfigError naming every problem."""
        problems: list[ConfigProblem] = unknown_names(self.settings, self.plugins)
        unknown: list[ConfigProblem] = []
        if self.settings.enabled and not self.settings.channels:
            problems.append(
                ConfigProblem(
                    key="CHAPERONE_ALERT_CHANNELS",
                    source=self.settings.source_of("alerting.channels"),
                    message="no channel configured: every alert would be lost",
                )
            )
        destinations = [Destination(channel=name) for name in self.settings.channels]
        for index, route in enumerate(self.settings.routes):
            destinations.extend(
                Destination(
                    channel=name,
                    route=route.name,
                    settings=route.channel_settings.get(name, {}),
                )
                for name in route.channels
            )
            for name in route.channels:
                if name not in self.plugins.channel_classes:
                    unknown.append(self._unknown_channel(name, f"alerting.routes[{index}]"))
        for destination in destinations:
            if destination.channel not in self.plugins.channel_classes:
                if destination.route == "default":
                    unknown.append(self._unknown_channel(destination.channel))
                continue
            try:
                self.channel_for(destination)
            except ConfigError as exc:
                problems.extend(exc.problems)
                continue
            problems.extend(self._fallback_problems(destination))
        problems = list(dict.fromkeys(problems))  # a channel on several routes: once
        if unknown:
            raise UnknownChannelError([*unknown, *problems])
        if problems:
            raise ConfigError(problems)

    def _fallback_problems(self, destination: Destination) -> list[ConfigProblem]:
        """What is wrong with the chain of fallbacks from ``destination``: a fallback
        that is not an installed channel, the channel itself, or a cycle.
        """
        seen = [destination.channel]
        current = destination
        while True:
            policy = self.policy_for(current)
            if policy.fallback is None:
                return []
            channel_class = self.plugins.channel_classes[current.channel]
            settings = channel_settings(
                channel_class,
                app=self.settings,
                store=self.store,
                clock=self.clock,
                route=current.route,
                overrides=current.settings,
            )
            name, source = settings.origins.get(
                "fallback", (settings.setting_name("fallback"), "not set")
            )
            if policy.fallback == current.channel:
                message = "names the channel itself"
            elif policy.fallback in seen:
                chain = " → ".join([*seen, policy.fallback])
                message = f"makes a cycle of fallbacks: {chain}"
            elif policy.fallback not in self.plugins.channel_classes:
                installed = ", ".join(sorted(self.plugins.channel_classes)) or "none"
                message = (
                    f"names {policy.fallback!r}, which no installed plugin provides "
                    f"(installed channels: {installed})"
                )
            else:
                current = Destination(
                    channel=policy.fallback,
                    route=current.route,
                    settings=self.route_settings(current.route, policy.fallback),
                )
                seen.append(policy.fallback)
                try:
                    self.channel_for(current)
                except ConfigError as exc:
                    return list(exc.problems)
                continue
            return [ConfigProblem(key=name, source=source, message=message)]

    def _unknown_channel(self, name: str, route: str | None = None) -> ConfigProblem:
        installed = ", ".join(sorted(self.plugins.channel_classes)) or "none"
        provider = next((info for info in self.plugins.broken if info.name == name), None)
        hint = (
            f"the plugin {name!r} is installed but broken ({provider.error})"
            if provider
            else f"install it with: pip install {package_for_channel(name)}"
        )
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
        with self._channels_lock:
            target = self._channels.get(cache_key)
            if target is not None:
                return target
            channel_class = self.plugins.channel_classes.get(destination.channel)
            if channel_class is None:
                raise UnknownChannelError(self._unknown_channel(destination.channel))
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
            self._channels[cache_key] = target
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

    def _secret_book(self) -> SecretBook:
        """The outbox's book of secret settings, taught every route's settings."""

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

    # -- queue lengths -----------------------------------------------------------------

    def add_queue_length_source(self, name: str, read: Callable[[], int]) -> None:
        """Have the threshold detector watch queue ``name``, whose depth ``read()``
        returns on each monitor tick, e.g. ``lambda: redis.llen("celery")``. A source
        added again under the same name replaces the earlier one.
        """
        if not name:
            raise ValueError("a queue length source needs a name")
        self._queue_length_sources[name] = read

    @property
    def queue_length_sources(self) -> Mapping[str, Callable[[], int]]:
        """The queue depth callables added with :meth:`add_queue_length_source`, by name."""
        return dict(self._queue_length_sources)

    # -- dispatch ----------------------------------------------------------------------

    async def adispatch(
        self, event: Event, *, is_test: bool = False, wait: float | None = None
    ) -> DispatchReport:
        """Turn ``event`` into alerts and deliver them; never raises.

        The alerts are filtered, routed and written to the outbox before this returns;
        their deliveries are waited for at most ``wait`` seconds (None: until all are
        done; 0: not at all). One still going on is reported in flight, and goes on: its
        hooks are called when it ends.
        """
        try:
            return await self._loop.arun(process_event(self, event, is_test=is_test, wait=wait))
        except Exception as exc:
            return self._failed(event, exc)

    def dispatch(
        self, event: Event, *, is_test: bool = False, wait: float | None = None
    ) -> DispatchReport:
        """Synchronous :meth:`adispatch`, for job code and scripts; never raises."""
        try:
            return self._loop.run(process_event(self, event, is_test=is_test, wait=wait))
        except Exception as exc:
            return self._failed(event, exc)

    async def adispatch_all(
        self, events: Iterable[Event], *, drain: bool = True, wait: float | None = None
    ) -> list[DispatchReport]:
        """Dispatch several events as one batch, as the monitor does each tick: every alert
        of every event is filtered, routed and written to the outbox first, then all are
        delivered at once, together with (``drain``) the outbox entries that are due. The
        deliveries are waited for at most ``wait`` seconds, as in :meth:`adispatch`.
        Never raises.
        """
        events = list(events)
        try:
            return await self._loop.arun(process_events(self, events, drain=drain, wait=wait))
        except Exception as exc:
            return [self._failed(event, exc) for event in events]

    def dispatch_all(
        self, events: Iterable[Event], *, drain: bool = True, wait: float | None = None
    ) -> list[DispatchReport]:
        """Synchronous :meth:`adispatch_all`; never raises."""
        events = list(events)
        try:
            return self._loop.run(process_events(self, events, drain=drain, wait=wait))
        except Exception as exc:
            return [self._failed(event, exc) for event in events]

    def drain_outbox(self, *, wait: float | None = None) -> list[DeliveryResult]:
        """Deliver the outbox entries that are due and held by no live process (retries
        put back for later, what a killed process left), waiting for them at most
        ``wait`` seconds; never raises.
        """
        try:
            return self._loop.run(drain(self, wait=wait))
        except Exception as exc:
            _log.error("outbox drain failed", error=MASKER.mask(f"{type(exc).__name__}: {exc}"))
            return []

    async def asend(
        self, alert: Alert, *, is_test: bool = False, wait: float | None = None
    ) -> AlertReport:
        """Filter, route and deliver an alert built by hand (``wait`` as in
        :meth:`adispatch`).
        """
        return await self._loop.arun(process_alert(self, alert, is_test=is_test, wait=wait))

    def send(
        self, alert: Alert, *, is_test: bool = False, wait: float | None = None
    ) -> AlertReport:
        """Synchronous :meth:`asend`."""
        return self._loop.run(process_alert(self, alert, is_test=is_test, wait=wait))

    def wait_for_deliveries(self, timeout: float | None = None) -> int:
        """Wait until no delivery is in flight, at most ``timeout`` seconds (None: no
        limit); return how many are still going on.
        """
        return self._loop.run(self.in_flight.wait_all(timeout))

    def _watch_the_store(self) -> None:
        """A resilient store going degraded or back is the ``store`` part failing or
        working again (raising and resolving ``chaperone_degraded``).
        """
        store = self.store
        if not isinstance(store, ResilientStore):
            return

        def on_change(change: StoreChange) -> None:
            if change.state is StoreState.DEGRADED:
                self.self_watch.failing("store", change.reason or "the store failed")
            else:
                self.self_watch.working("store")

        store.add_listener(on_change)
        if store.state is StoreState.DEGRADED:  # it failed to open: no change to hear of
            self.self_watch.failing("store", store.reason or "the store could not be opened")

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run ``coroutine`` on the delivery loop without waiting for it (from any thread,
        the loop's own included).
        """
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop.loop)

    def _failed(self, event: Event, exc: Exception) -> DispatchReport:
        reason = MASKER.mask(f"{type(exc).__name__}: {exc}")
        _log.error("alert pipeline failed", event_type=type(event).__name__, error=reason)
        return DispatchReport(event=event, skipped=f"pipeline failed: {reason}")

    # -- lifetime ----------------------------------------------------------------------

    async def _aclose_resources(self) -> None:
        for target in list(self._channels.values()):
            try:
                await target.channel.aclose()
            except Exception as exc:
                _log.warning("channel failed to close", error=MASKER.mask(str(exc)))
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def _aclose(self, grace: float) -> None:
        await settle(self, grace)
        await self._aclose_resources()

    def close(self) -> None:
        """Wait for the deliveries in flight, Chaperone's own alerts among them, at most
        ``delivery.exit_grace`` in all (the rest stay in the outbox, for ``chaperone
        monitor``), then close channels, the HTTP client, the delivery loop and the store:
        a store degraded until now is tried once more first, so that what memory holds
        reaches it if it is back.
        """
        grace = self.settings.delivery.exit_grace.total_seconds()
        deadline = time.monotonic() + grace
        left = self.self_watch.wait(grace)
        if left:
            _log.error("degraded alerts still unsent at exit", count=left)
        try:
            self._loop.run(self._aclose(max(0.0, deadline - time.monotonic())))
        finally:
            self._loop.stop()
            self._channels.clear()
            store = self.store
            if isinstance(store, ResilientStore) and store.state is StoreState.DEGRADED:
                store.probe()
            store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        store = MASKER.mask(self.store.url)
        return f"<Runtime store={store!r} channels={list(self.settings.channels)}>"
