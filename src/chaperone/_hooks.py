"""One typed method per hook, each a call through pluggy (so wrappers run).

``Hooks(runtime)`` calls the hooks of ``runtime.plugins`` with ``runtime`` passed along.
For the isolated hooks (every implementation called, see :func:`chaperone._plugins.is_isolated`)
an implementation that raises is logged and skipped by its guard, and the others still
run: these methods never raise for a plugin's mistake. The firstresult hooks raise what
their implementation raised, and the caller (the dispatcher) decides the fallback: the
built-in alert, sending the alert anyway, the default route.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

import attrs
import structlog

from chaperone._alerts import Alert, Priority
from chaperone._events import Event
from chaperone._plugins import HookFailure, collect_failures
from chaperone._runtime import Runtime
from chaperone._verdicts import Destination, Outcome, Verdict

__all__ = ["Detection", "Hooks"]

_log = structlog.get_logger("chaperone.plugins")


@attrs.frozen(kw_only=True)
class Detection:
    """What one round of ``chaperone_detect`` found, and the detectors that raised."""

    events: tuple[Event, ...] = ()
    failures: tuple[HookFailure, ...] = ()


@attrs.frozen
class Hooks:
    """The hooks of one runtime's plugins, each called through pluggy with ``runtime``."""

    runtime: Runtime

    # -- from event to alert ---------------------------------------------------------

    def event(self, event: Event) -> None:
        """Show ``event`` to every ``chaperone_event`` observer."""
        self.runtime.plugins.hook.chaperone_event(event=event, runtime=self.runtime)

    def alerts(self, event: Event) -> Sequence[Alert] | None:
        """The alerts the first ``chaperone_alerts`` implementation built, as it returned
        them (None when none answered); raises what that implementation raised.
        """
        alerts: Sequence[Alert] | None = self.runtime.plugins.hook.chaperone_alerts(
            event=event, runtime=self.runtime
        )
        return alerts

    def priority(self, alert: Alert) -> Priority | None:
        """The priority the first ``chaperone_alert_priority`` implementation gave (None:
        keep the alert's; an answer that is no priority is logged and counts as None).
        """
        answer = self.runtime.plugins.hook.chaperone_alert_priority(
            alert=alert, runtime=self.runtime
        )
        if answer is None:
            return None
        try:
            return Priority(answer)
        except ValueError:
            _log.error("priority hook returned no priority", returned=repr(answer))
            return None

    def filter(self, alert: Alert, *, is_test: bool) -> Verdict | None:
        """The first filter's verdict (None: no filter had an opinion)."""
        verdict = self.runtime.plugins.hook.chaperone_filter_alert(
            alert=alert, runtime=self.runtime, is_test=is_test
        )
        return verdict if isinstance(verdict, Verdict) else None

    def route(self, alert: Alert) -> list[Destination] | None:
        """The destinations the first ``chaperone_route`` implementation chose (None when
        none answered).
        """
        destinations = self.runtime.plugins.hook.chaperone_route(alert=alert, runtime=self.runtime)
        if destinations is None:
            return None
        return list(destinations)

    # -- after delivery --------------------------------------------------------------

    def delivered(self, alert: Alert, destination: Destination, outcome: Outcome) -> None:
        """Tell every ``chaperone_delivered`` implementation a channel confirmed ``alert``."""
        self.runtime.plugins.hook.chaperone_delivered(
            alert=alert, destination=destination, outcome=outcome, runtime=self.runtime
        )

    def delivery_failed(
        self, alert: Alert, destination: Destination, outcome: Outcome, attempts: int
    ) -> None:
        """Tell every ``chaperone_delivery_failed`` implementation a delivery failed for good."""
        self.runtime.plugins.hook.chaperone_delivery_failed(
            alert=alert,
            destination=destination,
            outcome=outcome,
            attempts=attempts,
            runtime=self.runtime,
        )

    # -- detection -------------------------------------------------------------------

    def detect(self, now: datetime) -> Detection:
        """Ask every detector for events: a bare event counts as one, junk is ignored; a
        detector that raises is logged, skipped and named in ``failures``.
        """
        with collect_failures() as failures:
            results = self.runtime.plugins.hook.chaperone_detect(runtime=self.runtime, now=now)
        events: list[Event] = []
        for result in results:
            events.extend(_events(result))
        return Detection(events=tuple(events), failures=tuple(failures))

    def queue_lengths(self) -> list[Mapping[object, object]]:
        """Every ``chaperone_queue_lengths`` report, in pluggy's order; a report that is
        not a mapping is logged and skipped.
        """
        reports: list[Mapping[object, object]] = []
        for result in self.runtime.plugins.hook.chaperone_queue_lengths(runtime=self.runtime):
            if not isinstance(result, Mapping):
                _log.error(
                    "skipped queue lengths that are not a mapping",
                    hook="chaperone_queue_lengths",
                    result_type=type(result).__name__,
                )
                continue
            reports.append(result)
        return reports


def _events(result: object) -> Sequence[Event]:
    if isinstance(result, Event):
        return [result]
    if isinstance(result, Iterable):
        return [item for item in result if isinstance(item, Event)]
    return []
