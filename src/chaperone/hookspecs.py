"""Every hook Chaperone calls. Plugins implement them with ``@chaperone.hookimpl``.

Hooks are called with keyword arguments; an implementation may accept fewer arguments
than the spec names, so specs can grow without breaking plugins. Built-in plugins use
exactly these hooks, so nothing the core does is out of a plugin's reach.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from chaperone._alerts import Alert, Priority
from chaperone._events import Event
from chaperone._markers import hookspec
from chaperone._verdicts import Destination, Outcome, Verdict

if TYPE_CHECKING:
    import click

    from chaperone._runtime import Runtime
    from chaperone.channels import Channel

__all__ = [
    "chaperone_alert_priority",
    "chaperone_alerts",
    "chaperone_delivered",
    "chaperone_delivery_failed",
    "chaperone_detect",
    "chaperone_event",
    "chaperone_filter_alert",
    "chaperone_queue_lengths",
    "chaperone_register_channels",
    "chaperone_register_commands",
    "chaperone_register_events",
    "chaperone_register_settings",
    "chaperone_route",
]

RegisterChannel = Callable[["type[Channel]"], None]
"""The ``register`` callback :func:`chaperone_register_channels` receives: call it with
each channel class the plugin provides.
"""
RegisterEvent = Callable[[type[Event]], None]
"""The ``register`` callback :func:`chaperone_register_events` receives: call it with each
event class the plugin provides."""
RegisterSettings = Callable[[type[Any]], None]
"""The ``register`` callback :func:`chaperone_register_settings` receives: call it with
the plugin's settings class."""

# -------------------------------------------------------------------------------------
# Start-up
# -------------------------------------------------------------------------------------


@hookspec
def chaperone_register_channels(register: RegisterChannel) -> None:
    """Register channel classes by calling ``register(ChannelClass)`` once for each.

    Called once when the plugin host starts. The core builds and calls the channels, so
    one channel's failure never stops another's delivery.

    :param register: takes a :class:`chaperone.channels.Channel` subclass; its
        ``name`` is what config and routes refer to.
    """


@hookspec
def chaperone_register_events(register: RegisterEvent) -> None:
    """Register the plugin's own event classes by calling ``register(EventClass)`` once
    for each.

    Called once per plugin when the plugin host starts, in every process that builds
    one: the monitor decodes the events a job process queued by their class's name. An
    event class is an attrs subclass of :class:`chaperone.Event` whose fields the store's
    codec carries (text, numbers, booleans, datetimes, timedeltas, enums, tuples, lists
    and dicts of them). A class that is not one, or whose name a built-in event or
    another plugin's event already has, is refused: the plugin is listed broken.
    The plugin's ``chaperone_alerts`` hook turns its events into alerts (the built-in
    builder knows only the built-in events, so an event no hook answers raises none).

    :param register: takes a :class:`chaperone.Event` subclass.
    """


@hookspec
def chaperone_register_settings(register: RegisterSettings) -> None:
    """Declare the plugin's settings by calling ``register(SettingsClass)`` once, with an
    attrs class whose fields are the settings.

    Called once per plugin when the plugin host starts. The values come from the table
    ``[plugins.<plugin name>]`` of the configuration file (or
    ``[tool.chaperone.plugins.<plugin name>]``) and from ``CHAPERONE_<PLUGIN NAME>_<FIELD>``
    variables (``.env`` included), with the same precedence as every setting. Fields
    typed ``str``, ``int``, ``float``, ``bool``, ``timedelta`` or ``tuple[str, ...]``
    (or any of these ``| None``) are read from text; a field marked
    ``metadata={"secret": True}`` is masked everywhere. A hook reads the validated
    instance with ``runtime.settings.plugin("<plugin name>")``.

    :param register: takes the attrs class; a field without a default must be set.
    """


@hookspec
def chaperone_register_commands(cli: click.Group) -> None:
    """Add the plugin's subcommands to the ``chaperone`` command line, with
    ``cli.add_command(command)`` or ``@cli.command()``.

    Called once per plugin, when the command line lists its commands (``chaperone
    --help``) or is asked for one that is not built in. A command named like a built-in
    one is refused (the built-in wins, the plugin is listed broken), as is one another
    plugin added first.

    :param cli: a click group that collects the plugin's commands.
    """


# -------------------------------------------------------------------------------------
# Detection (run by the monitor, outside the jobs it watches)
# -------------------------------------------------------------------------------------


@hookspec
def chaperone_detect(runtime: Runtime, now: datetime) -> Iterable[Event] | None:
    """Look for trouble and return the events found (or None).

    Called on every tick of the monitor.

    :param runtime: the narrow runtime: settings, store, clock, plugins and a logger.
    :param now: the tick's time, from the runtime's clock.
    """


@hookspec
def chaperone_queue_lengths(runtime: Runtime) -> Mapping[str, int] | None:
    """Report how many jobs wait in each queue: ``{queue name: depth}`` (or None).

    Called on every tick of the monitor by the threshold detector, which compares each
    depth with ``alerting.thresholds.queue_length``. Every implementation is called; one
    that raises is logged and the rest still run. A queue reported twice counts at its
    largest depth.

    :param runtime: the narrow runtime: settings, store, clock, plugins and a logger.
    """


# -------------------------------------------------------------------------------------
# From event to alert
# -------------------------------------------------------------------------------------


@hookspec
def chaperone_event(event: Event, runtime: Runtime) -> None:
    """Observe an event before it becomes an alert (the seed's event listeners).

    Every implementation is called; one that raises is logged and the rest still run.

    :param event: the event, its ``occurred_at`` filled in.
    :param runtime: the narrow runtime.
    """


@hookspec(firstresult=True)
def chaperone_alerts(event: Event, runtime: Runtime) -> Sequence[Alert] | None:
    """Build the alerts for an event: usually one, none to ignore it, several where one
    event resolves several incidents.

    firstresult: the first implementation that returns a sequence decides. The
    built-in one runs last, so a plugin can override the alert for any event.

    :param event: the event, its ``occurred_at`` filled in.
    :param runtime: the narrow runtime (settings such as ``app_url``).
    """


@hookspec(firstresult=True)
def chaperone_alert_priority(alert: Alert, runtime: Runtime) -> Priority | None:
    """Give an alert its priority (critical, high, normal, low) before the filters see it.

    firstresult: the first implementation that returns a :class:`Priority` decides; None
    keeps the priority the alert was built with. The built-in one, from the
    ``[alerting.priority]`` rules, runs last. Critical alerts skip escalation delays and
    grouping; low ones can be made digest-only.

    :param alert: the alert as built.
    :param runtime: the narrow runtime.
    """


@hookspec(firstresult=True)
def chaperone_filter_alert(alert: Alert, runtime: Runtime, is_test: bool) -> Verdict | None:
    """Decide whether an alert goes out now, is suppressed, or is held for a group.

    firstresult: filters are asked in order and the first :class:`Verdict` decides
    (``send`` skips the filters after it); None means no opinion. The built-in filters
    run in the order maintenance, escalation, rate limit, grouping; a plugin's filter
    runs before them unless it is marked ``trylast``. Before every filter, a plugin's
    too, the open incidents' (``tryfirst``) counts the alert in its incident and
    suppresses it when the incident is acknowledged. Digests (``alert.is_digest``) are
    not filtered: the alerts they stand for already were.

    :param alert: the alert.
    :param runtime: the narrow runtime: settings, store, clock, plugins and a logger.
    :param is_test: True for ``chaperone test-alerts``, which bypasses rate limits.
    """


@hookspec(firstresult=True)
def chaperone_route(alert: Alert, runtime: Runtime) -> Sequence[Destination] | None:
    """Choose where an alert goes.

    firstresult: the first implementation that returns destinations decides; the
    built-in one runs last: the first matching ``[[alerting.routes]]`` entry (and those
    after it while they say ``continue``), else the default route
    (``CHAPERONE_ALERT_CHANNELS``).

    :param alert: the alert that passed the filters.
    :param runtime: the narrow runtime.
    """


# -------------------------------------------------------------------------------------
# After delivery
# -------------------------------------------------------------------------------------


@hookspec
def chaperone_delivered(
    alert: Alert, destination: Destination, outcome: Outcome, runtime: Runtime
) -> None:
    """A channel confirmed an alert.

    Called once per delivery, when it ends (a delivery deferred by a long Retry-After is
    reported by the process that finishes it from the outbox). Every implementation is
    called; one that raises is logged and the rest still run.

    :param alert: the alert delivered.
    :param destination: the channel and route it went through; ``destination.fallback_of``
        names the channel a fallback delivery stood in for.
    :param outcome: the channel's confirmation.
    :param runtime: the narrow runtime.
    """


@hookspec
def chaperone_delivery_failed(
    alert: Alert, destination: Destination, outcome: Outcome, attempts: int, runtime: Runtime
) -> None:
    """A delivery failed for good: a permanent error, or transient ones until the
    attempts (``max_attempts``) or the time (``max_total``) ran out. The channel's
    fallback, if it has one, is tried next and reported on its own.

    Every implementation is called; one that raises is logged and the rest still run.

    :param alert: the alert that was not delivered.
    :param destination: the channel and route it was for.
    :param outcome: the last attempt's outcome (its detail is free of secrets).
    :param attempts: how many sends were tried.
    :param runtime: the narrow runtime.
    """
