"""The running Chaperone: what users build and call.

Build it once at start-up (``Chaperone.from_environment()``); that validates the whole
configuration, every configured channel included, so a bad setting fails there. Then
``dispatch(event)`` from any thread or ``await adispatch(event)`` from any event loop;
neither ever raises into the caller.

The facade assembles the pieces and owns their lifetime: the narrow
:class:`~chaperone.Runtime` hooks receive (``runtime``), the channel registry
(``channels``), the outbox, the self-watch, the dispatcher and the delivery loop.

Deliveries run as tasks on the facade's own loop: a caller waits for them as long as it
says (``wait``), and ``close()`` waits for those still in flight at most
``delivery.exit_grace``, leaving the rest in the outbox.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import structlog

from chaperone._alerts import Alert
from chaperone._clock import Clock, SystemClock
from chaperone._degraded import SelfWatch
from chaperone._delivery import DeliveryContext, DeliveryResult, drain, settle
from chaperone._dispatch import AlertReport, Dispatcher, DispatchReport
from chaperone._events import Event
from chaperone._gates import DeliveryGates
from chaperone._hooks import Hooks
from chaperone._inflight import InFlight
from chaperone._logging import configure_logging
from chaperone._loop import BackgroundLoop
from chaperone._outbox import Outbox
from chaperone._plugins import PluginHost
from chaperone._queue_sources import QueueLengthSources
from chaperone._runtime import Runtime
from chaperone._secrets import MASKER, describe
from chaperone._verdicts import Destination
from chaperone.channels._config_check import check
from chaperone.channels._registry import ChannelRegistry
from chaperone.config import Settings, bind_plugin_settings, load_settings
from chaperone.store import (
    ResilientStore,
    Store,
    StoreChange,
    StoreState,
    default_store_url,
    open_resilient_store,
)

__all__ = ["Chaperone"]

_log = structlog.get_logger("chaperone")
T = TypeVar("T")


class Chaperone:
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
        """Assemble Chaperone; with ``validate`` (the default) build every configured
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
        Chaperone opened it): a store that fails is worked around from memory."""
        self.runtime = Runtime(self.settings, self.store, self.clock, self.plugins)
        """What every hook receives: settings, store, clock, plugins and a logger."""
        self.hooks = Hooks(self.runtime)
        """The hooks, one typed method each."""
        self._loop = BackgroundLoop()
        self.in_flight = InFlight()
        """The deliveries running on the delivery loop (:mod:`chaperone._inflight`)."""
        self.delivery_gates = DeliveryGates()
        """Send slots per destination and in total (:mod:`chaperone._gates`)."""
        self.channels = ChannelRegistry(self.settings, self.store, self.clock, self.plugins)
        """The channel objects, their delivery policies and the HTTP client they share."""
        self.outbox = Outbox(self.store, self.clock, secrets=self.channels.secrets)
        """Where every routed alert waits until its channel confirmed it (see
        :mod:`chaperone._outbox`)."""
        self.self_watch = SelfWatch(self.runtime, deliver=self._deliver_direct, submit=self.submit)
        """Chaperone's own failing parts, alerted as ``chaperone_degraded``."""
        self.dispatcher = Dispatcher(
            hooks=self.hooks,
            delivery=DeliveryContext(
                settings=self.settings,
                store=self.store,
                clock=self.clock,
                outbox=self.outbox,
                channels=self.channels,
                in_flight=self.in_flight,
                gates=self.delivery_gates,
                watch=self.self_watch,
                hooks=self.hooks,
            ),
        )
        """event → alerts → filters → routes → outbox → delivery."""
        self._queue_sources: QueueLengthSources | None = None
        self._watch_the_store()
        if validate:
            try:
                self.check()
            except BaseException:
                # Release what was built; the store too when it was opened here.
                self._loop.run(self.channels.aclose())
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
        build a validated Chaperone on the configured store (SQLite by default).
        """
        settings = load_settings(environ, cwd, default_store_url=default_store_url())
        if setup_logging:
            configure_logging(settings)
        return cls(settings, clock=clock)

    def check(self) -> None:
        """Build every configured channel; raise one ConfigError naming every problem."""
        check(self.channels)

    # -- queue lengths -----------------------------------------------------------------

    def add_queue_length_source(self, name: str, read: Callable[[], int]) -> None:
        """Have the threshold detector watch queue ``name``, whose depth ``read()``
        returns on each monitor tick, e.g. ``lambda: redis.llen("celery")``. A source
        added again under the same name replaces the earlier one.
        """
        if self._queue_sources is None:
            sources = QueueLengthSources(self.runtime)
            sources.add(name, read)
            self.plugins.attach(sources, self._queue_sources_name)
            self._queue_sources = sources
        else:
            self._queue_sources.add(name, read)

    @property
    def queue_length_sources(self) -> Mapping[str, Callable[[], int]]:
        """The queue depth callables added with :meth:`add_queue_length_source`, by name."""
        return {} if self._queue_sources is None else self._queue_sources.sources

    @property
    def _queue_sources_name(self) -> str:
        return f"chaperone.queue_length_sources.{id(self):x}"

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
            return await self._loop.arun(
                self.dispatcher.process_event(event, is_test=is_test, wait=wait)
            )
        except Exception as exc:
            return self._failed(event, exc)

    def dispatch(
        self, event: Event, *, is_test: bool = False, wait: float | None = None
    ) -> DispatchReport:
        """Synchronous :meth:`adispatch`, for job code and scripts; never raises."""
        try:
            return self._loop.run(self.dispatcher.process_event(event, is_test=is_test, wait=wait))
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
            return await self._loop.arun(
                self.dispatcher.process_events(events, drain=drain, wait=wait)
            )
        except Exception as exc:
            return [self._failed(event, exc) for event in events]

    def dispatch_all(
        self, events: Iterable[Event], *, drain: bool = True, wait: float | None = None
    ) -> list[DispatchReport]:
        """Synchronous :meth:`adispatch_all`; never raises."""
        events = list(events)
        try:
            return self._loop.run(self.dispatcher.process_events(events, drain=drain, wait=wait))
        except Exception as exc:
            return [self._failed(event, exc) for event in events]

    def drain_outbox(self, *, wait: float | None = None) -> list[DeliveryResult]:
        """Deliver the outbox entries that are due and held by no live process (retries
        put back for later, what a killed process left), waiting for them at most
        ``wait`` seconds; never raises.
        """
        try:
            return self._loop.run(drain(self.dispatcher.delivery, wait=wait))
        except Exception as exc:
            _log.error("outbox drain failed", error=describe(exc))
            return []

    async def asend(
        self, alert: Alert, *, is_test: bool = False, wait: float | None = None
    ) -> AlertReport:
        """Filter, route and deliver an alert built by hand (``wait`` as in
        :meth:`adispatch`).
        """
        return await self._loop.arun(
            self.dispatcher.process_alert(alert, is_test=is_test, wait=wait)
        )

    def send(
        self, alert: Alert, *, is_test: bool = False, wait: float | None = None
    ) -> AlertReport:
        """Synchronous :meth:`asend`."""
        return self._loop.run(self.dispatcher.process_alert(alert, is_test=is_test, wait=wait))

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
        return self.dispatcher.failed(event, exc)

    async def _deliver_direct(self, event: Event, skip: Callable[[Destination], bool]) -> bool:
        """Send one of Chaperone's own alerts without the store (for the self-watch);
        whether some channel confirmed it.
        """
        report = await self.dispatcher.process_direct(event, skip=skip)
        return any(result.ok for alert in report.alerts for result in alert.deliveries)

    # -- lifetime ----------------------------------------------------------------------

    async def _aclose(self, grace: float) -> None:
        await settle(self.dispatcher.delivery, grace)
        await self.channels.aclose()

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
            self.channels.clear()
            if self._queue_sources is not None:
                self.plugins.detach(self._queue_sources_name)
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
        return f"<Chaperone store={store!r} channels={list(self.settings.channels)}>"
