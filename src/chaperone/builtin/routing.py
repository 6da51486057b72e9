"""Built-in plugin: route an alert by the ``[[alerting.routes]]`` of the config.

Routes are tried in order. The first one whose ``match`` table matches the alert decides,
unless it says ``continue = true``: then the routes after it are tried too, and each one
that matches adds its channels. When no route matches, the alert takes the default route:
every channel of ``CHAPERONE_ALERT_CHANNELS``.

Each destination carries the route's settings for its channel (another Slack webhook for
``#alerts-critical``) and a runbook link: the route's ``runbook_url``, else the one of
the alert's type from ``[alerting.runbooks]`` (delivery shows it when the alert has none
of its own). A channel reached twice with the same settings (through two continued
routes) is sent to once, for the first route.

:func:`explain_route` is the whole decision, with the reasons; the hook and
``chaperone route`` both use it, so what the command says is what the pipeline does.

A resolution goes where its alert went. When any route is configured, the routes a firing
alert took are kept in the store (per type and key, for :data:`INCIDENT_MEMORY`), and its
resolution takes exactly those routes, whatever its own fields would match: a resolve is
severity ``info``, so a route by severity would otherwise page PagerDuty with the trigger
and send the resolve, which closes the incident, somewhere else. A resolution whose alert
was never routed (or routed longer ago than that) is routed by its own fields.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterator, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Final

import attrs

from chaperone._alerts import Alert
from chaperone._markers import hookimpl
from chaperone._verdicts import Destination

if TYPE_CHECKING:
    from chaperone._runtime import Runtime
    from chaperone.config import Route, Settings

__all__ = [
    "DEFAULT_ROUTE",
    "INCIDENT_MEMORY",
    "RouteCheck",
    "RouteDecision",
    "RouteStatus",
    "chaperone_route",
    "explain_route",
]

ORDER: Final = 100
"""Its place among the built-ins, whose hooks are called lowest first (:mod:`chaperone.builtin`)."""
REQUIRED: Final = (
    "it routes by the configuration; a plugin's chaperone_route answers before it, "
    "so to route otherwise, return your own destinations"
)
"""Why this built-in cannot be disabled: naming it in ``plugins.disable`` is refused."""

DEFAULT_ROUTE = "default"
"""The name destinations of the default route (``CHAPERONE_ALERT_CHANNELS``) carry."""

INCIDENT_MEMORY = timedelta(days=7)
"""How long the routes of a firing alert are kept for its resolution."""


class RouteStatus(enum.StrEnum):
    """What became of one route for one alert."""

    MATCHED = "matched"
    NOT_MATCHED = "not matched"
    NOT_CONSIDERED = "not considered"
    """An earlier route matched and does not continue, so this one was not tried."""


@attrs.frozen(kw_only=True)
class RouteCheck:
    """One route, tried (or not) against one alert, with a line per match field."""

    route: Route
    status: RouteStatus
    why: tuple[str, ...] = ()
    """For a tried route, whether and how each field matched; for one not tried, why not."""

    @property
    def matched(self) -> bool:
        """Whether this route matched the alert (and so added its channels)."""
        return self.status is RouteStatus.MATCHED


@attrs.frozen(kw_only=True)
class RouteDecision:
    """Where one alert goes and why: every route in order, and the destinations."""

    checks: tuple[RouteCheck, ...]
    destinations: tuple[Destination, ...]
    default_route: bool
    """Whether no route matched, so the alert took the default route."""

    @property
    def matched(self) -> tuple[RouteCheck, ...]:
        """The routes that matched, in order."""
        return tuple(check for check in self.checks if check.matched)

    @property
    def unmatched(self) -> tuple[RouteCheck, ...]:
        """The routes tried that did not match."""
        return tuple(check for check in self.checks if check.status is RouteStatus.NOT_MATCHED)

    @property
    def not_considered(self) -> tuple[RouteCheck, ...]:
        """The routes never tried, because an earlier one matched and does not continue."""
        return tuple(check for check in self.checks if check.status is RouteStatus.NOT_CONSIDERED)


def _why(route: Route, alert: Alert) -> tuple[str, ...]:
    return tuple(route.match.explain(alert)) or ("no match table: matches every alert",)


def _add(destinations: list[Destination], candidate: Destination) -> None:
    """Append ``candidate`` unless the same channel with the same settings is there."""
    for existing in destinations:
        if existing.channel == candidate.channel and dict(existing.settings) == dict(
            candidate.settings
        ):
            return
    destinations.append(candidate)


def _route_targets(route: Route, type_runbook: str | None) -> Iterator[Destination]:
    """A route's destinations: its channels, with its settings for each and its runbook."""
    for channel in route.channels:
        yield Destination(
            channel=channel,
            route=route.name,
            settings=dict(route.channel_settings.get(channel, {})),
            runbook_url=route.runbook_url or type_runbook,
        )


def _default_targets(settings: Settings, type_runbook: str | None) -> Iterator[Destination]:
    """The default route's destinations: every channel of ``CHAPERONE_ALERT_CHANNELS``."""
    for channel in settings.channels:
        yield Destination(channel=channel, route=DEFAULT_ROUTE, runbook_url=type_runbook)


def explain_route(alert: Alert, settings: Settings) -> RouteDecision:
    """Route ``alert`` by ``settings.routes`` (else the default route) and say why.

    Pure: the same alert and settings always give the same decision.
    """
    type_runbook = settings.runbooks.get(alert.type)
    checks: list[RouteCheck] = []
    destinations: list[Destination] = []
    stopped_by: str | None = None
    for route in settings.routes:
        if stopped_by is not None:
            checks.append(
                RouteCheck(
                    route=route,
                    status=RouteStatus.NOT_CONSIDERED,
                    why=(f"route {stopped_by!r} matched first and does not continue",),
                )
            )
            continue
        if not route.match.matches(alert):
            checks.append(
                RouteCheck(route=route, status=RouteStatus.NOT_MATCHED, why=_why(route, alert))
            )
            continue
        checks.append(RouteCheck(route=route, status=RouteStatus.MATCHED, why=_why(route, alert)))
        for destination in _route_targets(route, type_runbook):
            _add(destinations, destination)
        if not route.continue_matching:
            stopped_by = route.name
    default_route = not any(check.matched for check in checks)
    if default_route:
        for destination in _default_targets(settings, type_runbook):
            _add(destinations, destination)
    return RouteDecision(
        checks=tuple(checks), destinations=tuple(destinations), default_route=default_route
    )


def _route_destinations(
    alert: Alert, settings: Settings, names: Collection[str]
) -> list[Destination]:
    """The destinations of the routes named ``names`` (``default``: the default route),
    in config order; routes no longer in the config are left out.
    """
    type_runbook = settings.runbooks.get(alert.type)
    destinations: list[Destination] = []
    for route in settings.routes:
        if route.name in names:
            for destination in _route_targets(route, type_runbook):
                _add(destinations, destination)
    if DEFAULT_ROUTE in names:
        for destination in _default_targets(settings, type_runbook):
            _add(destinations, destination)
    return destinations


def _incident_prefix(alert: Alert) -> str:
    """Where the routes of the incident of ``alert`` are kept (the key's length first, so
    no key's prefix is another key's).
    """
    return f"routed:{alert.type}:{len(alert.key)}:{alert.key}:"


@hookimpl(trylast=True)
def chaperone_route(alert: Alert, runtime: Runtime) -> Sequence[Destination]:
    """Send the alert where the routes (else the default route) say; a resolution where
    its alert went.
    """
    settings = runtime.settings
    if not settings.routes or alert.is_digest:
        # Only the default route: a resolution goes where its alert went without help.
        return list(explain_route(alert, settings).destinations)
    store = runtime.store
    prefix = _incident_prefix(alert)
    if alert.is_resolved:
        names = {key.removeprefix(prefix) for key in store.keys(prefix)}
        if names:
            store.delete_prefix(prefix)
            earlier = _route_destinations(alert, settings, names)
            if earlier:
                return earlier
        return list(explain_route(alert, settings).destinations)
    destinations = explain_route(alert, settings).destinations
    for name in {destination.route for destination in destinations}:
        store.set(prefix + name, "1", ttl=INCIDENT_MEMORY.total_seconds())
    return list(destinations)
