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
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs

from chaperone._alerts import Alert
from chaperone._markers import hookimpl
from chaperone._verdicts import Destination

if TYPE_CHECKING:
    from chaperone._runtime import Runtime
    from chaperone.config import Route, Settings

__all__ = [
    "DEFAULT_ROUTE",
    "RouteCheck",
    "RouteDecision",
    "RouteStatus",
    "chaperone_route",
    "explain_route",
]

DEFAULT_ROUTE = "default"
"""The name destinations of the default route (``CHAPERONE_ALERT_CHANNELS``) carry."""


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
        for channel in route.channels:
            _add(
                destinations,
                Destination(
                    channel=channel,
                    route=route.name,
                    settings=dict(route.channel_settings.get(channel, {})),
                    runbook_url=route.runbook_url or type_runbook,
                ),
            )
        if not route.continue_matching:
            stopped_by = route.name
    default_route = not any(check.matched for check in checks)
    if default_route:
        for channel in settings.channels:
            _add(
                destinations,
                Destination(channel=channel, route=DEFAULT_ROUTE, runbook_url=type_runbook),
            )
    return RouteDecision(
        checks=tuple(checks), destinations=tuple(destinations), default_route=default_route
    )


@hookimpl(trylast=True)
def chaperone_route(alert: Alert, runtime: Runtime) -> Sequence[Destination]:
    """Send the alert where the routes (else the default route) say."""
    return list(explain_route(alert, runtime.settings).destinations)
