"""The dispatcher: event → alerts → filters → routes → outbox → channels.

Each step is a hook, guarded so that a plugin's mistake costs at most its own step: a
failing alert builder falls back to the built-in one, a failing filter lets the alert
through (a duplicate is better than a lost page), a failing route falls back to the
default route.

A batch of events (a monitor tick) is planned whole before anything is sent: every alert
of every event is filtered, routed and written to the outbox, one entry per destination;
only then are all the entries delivered, at once, each a task of the delivery loop. A
process killed during delivery leaves every alert of the batch in the outbox, and a slow
or rate-limited channel holds up no other destination.

The caller waits for the deliveries at most ``wait`` seconds (None: until all are done;
0: not at all, once the entries are written); what is still going on then is reported
in flight, and goes on.

The dispatcher is handed what it needs: the typed hooks and the delivery context (the
outbox, the channel registry, the in-flight set and gates, the self-watch). It knows
neither the runtime module nor the facade that builds it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import attrs
import structlog

from chaperone import _delivery
from chaperone._alerts import Alert
from chaperone._delivery import DeliveryContext, DeliveryResult, DeliveryStatus
from chaperone._events import Event
from chaperone._hooks import Hooks
from chaperone._outbox import Claim
from chaperone._secrets import describe
from chaperone._verdicts import Destination, Verdict, VerdictKind
from chaperone.builtin import alert_builder as builtin_alerts
from chaperone.builtin import routing as builtin_routing

__all__ = ["AlertReport", "DispatchReport", "Dispatcher"]

_log = structlog.get_logger("chaperone.pipeline")


@attrs.frozen(kw_only=True)
class AlertReport:
    """What became of one alert: the filters' verdict and each delivery."""

    alert: Alert
    verdict: Verdict
    deliveries: tuple[DeliveryResult, ...] = ()

    @property
    def delivered(self) -> bool:
        """Whether the alert was sent and every destination confirmed it."""
        return (
            self.verdict.kind is VerdictKind.SEND
            and bool(self.deliveries)
            and all(result.ok for result in self.deliveries)
        )

    @property
    def deferred(self) -> bool:
        """Whether some destination's delivery goes on later, from the outbox."""
        return any(result.status is DeliveryStatus.DEFERRED for result in self.deliveries)

    @property
    def in_flight(self) -> bool:
        """Whether some destination's delivery was still going on when the report was made."""
        return any(result.status is DeliveryStatus.IN_FLIGHT for result in self.deliveries)


@attrs.frozen(kw_only=True)
class DispatchReport:
    """What became of one event."""

    event: Event
    alerts: tuple[AlertReport, ...] = ()
    skipped: str | None = None
    """Why nothing was done (alerting disabled, the pipeline failed), when that is so."""


@attrs.frozen(kw_only=True)
class _Plan:
    """One alert, filtered and routed: its entries in the outbox, not yet delivered."""

    alert: Alert
    verdict: Verdict
    claims: tuple[Claim, ...] = ()


@attrs.frozen(kw_only=True)
class Dispatcher:
    """Runs events and alerts through the hooks, the outbox and delivery."""

    hooks: Hooks
    delivery: DeliveryContext

    async def process_event(
        self, event: Event, *, is_test: bool = False, wait: float | None = None
    ) -> DispatchReport:
        """Run one event through the whole pipeline, waiting for its deliveries at most
        ``wait`` seconds.
        """
        (report,) = await self.process_events([event], is_test=is_test, wait=wait)
        return report

    async def process_events(
        self,
        events: Sequence[Event],
        *,
        is_test: bool = False,
        drain: bool = False,
        wait: float | None = None,
    ) -> list[DispatchReport]:
        """Run a batch of events through the pipeline: plan every alert (filters, routes,
        outbox), then deliver them all at once, with the outbox's due entries when
        ``drain``, waiting for the deliveries at most ``wait`` seconds. One event whose
        planning fails is reported as skipped; the others go on.
        """
        planned: list[DispatchReport | tuple[Event, list[_Plan]]] = []
        for event in events:
            try:
                planned.append(self._plan_event(event, is_test))
            except Exception as exc:
                planned.append(self.failed(event, exc))
        claims = [
            claim
            for item in planned
            if isinstance(item, tuple)
            for plan in item[1]
            for claim in plan.claims
        ]
        if drain:
            per_claim, _drained = await asyncio.gather(
                _delivery.deliver_claims(self.delivery, claims, wait=wait),
                _delivery.drain(self.delivery, wait=wait),
            )
        else:
            per_claim = await _delivery.deliver_claims(self.delivery, claims, wait=wait)
        results = iter(per_claim)
        reports: list[DispatchReport] = []
        for item in planned:
            if isinstance(item, DispatchReport):
                reports.append(item)
                continue
            event, plans = item
            alert_reports = [
                AlertReport(
                    alert=plan.alert,
                    verdict=plan.verdict,
                    deliveries=tuple(result for _claim in plan.claims for result in next(results)),
                )
                for plan in plans
            ]
            reports.append(DispatchReport(event=event, alerts=tuple(alert_reports)))
        return reports

    async def process_direct(
        self, event: Event, *, skip: Callable[[Destination], bool] | None = None
    ) -> DispatchReport:
        """Deliver ``event``'s alerts without the store: no filters, no outbox, each
        destination tried from memory (all but those ``skip`` says to leave out). For
        Chaperone's own alerts (``chaperone_degraded``), which must go out when the store
        is the part that fails, and must not wait in a maintenance window or a group.
        """
        observed = self._observed(event)
        if isinstance(observed, DispatchReport):
            return observed
        verdict = Verdict.send("Chaperone's own alert: sent without the store and the filters")
        reports: list[AlertReport] = []
        for alert in self._alerts_for(observed):
            destinations = [
                destination
                for destination in self.destinations_for(alert)
                if skip is None or not skip(destination)
            ]
            claims = [_delivery.memory_claim(self.delivery, alert, where) for where in destinations]
            per_claim = await _delivery.deliver_claims(self.delivery, claims)
            reports.append(
                AlertReport(
                    alert=alert,
                    verdict=verdict,
                    deliveries=tuple(result for results in per_claim for result in results),
                )
            )
        return DispatchReport(event=observed, alerts=tuple(reports))

    async def process_alert(
        self, alert: Alert, *, is_test: bool = False, wait: float | None = None
    ) -> AlertReport:
        """Prioritise, filter, route and deliver one alert, waiting for its deliveries at
        most ``wait`` seconds.
        """
        plan = self._plan_alert(alert, is_test)
        per_claim = await _delivery.deliver_claims(self.delivery, plan.claims, wait=wait)
        return AlertReport(
            alert=plan.alert,
            verdict=plan.verdict,
            deliveries=tuple(result for results in per_claim for result in results),
        )

    def failed(self, event: Event, exc: Exception) -> DispatchReport:
        """The report of an event the pipeline failed on (logged, its error masked)."""
        reason = describe(exc)
        _log.error("alert pipeline failed", event_type=type(event).__name__, error=reason)
        return DispatchReport(event=event, skipped=f"pipeline failed: {reason}")

    # -- the steps ---------------------------------------------------------------------

    def _observed(self, event: Event) -> Event | DispatchReport:
        """``event`` with its time filled in, shown to the ``chaperone_event`` observers; a
        skipped report instead when alerting is disabled.
        """
        if event.occurred_at is None:
            event = attrs.evolve(event, occurred_at=self.delivery.clock.now())
        self.hooks.event(event)
        if not self.delivery.settings.enabled:
            return DispatchReport(
                event=event, skipped="alerting is disabled (CHAPERONE_ALERTING_ENABLED)"
            )
        return event

    def _plan_event(
        self, event: Event, is_test: bool
    ) -> DispatchReport | tuple[Event, list[_Plan]]:
        observed = self._observed(event)
        if isinstance(observed, DispatchReport):
            return observed
        plans = [self._plan_alert(alert, is_test) for alert in self._alerts_for(observed)]
        return observed, plans

    def _alerts_for(self, event: Event) -> Sequence[Alert]:
        try:
            alerts = self.hooks.alerts(event)
        except Exception as exc:
            _log.error("alert hook raised; using the built-in alert", error=describe(exc))
            alerts = builtin_alerts.build_alerts(event, self.hooks.runtime)
        if alerts is None:
            _log.debug("no alert for event", event_type=type(event).__name__)
            return ()
        return list(alerts)

    def _plan_alert(self, alert: Alert, is_test: bool) -> _Plan:
        """Prioritise, filter and route one alert; write its entries to the outbox."""
        alert = self.prioritise(alert)
        if alert.is_digest:
            verdict = Verdict.send("a digest: its alerts already passed the filters")
        else:
            verdict = self._verdict_for(alert, is_test)
        if verdict.kind is not VerdictKind.SEND:
            _log.info(
                "alert not sent",
                alert=alert.incident_key,
                verdict=verdict.kind.value,
                reason=verdict.reason,
            )
            return _Plan(alert=alert, verdict=verdict)
        destinations = self.destinations_for(alert)
        if not destinations:
            _log.warning("alert routed to no channel", alert=alert.incident_key)
        claims = _delivery.enqueue(self.delivery, alert, destinations)
        return _Plan(alert=alert, verdict=verdict, claims=tuple(claims))

    def prioritise(self, alert: Alert) -> Alert:
        """``alert`` with the priority the ``chaperone_alert_priority`` hook gives it (a
        hook that raises or answers nothing keeps the alert's own).
        """
        try:
            priority = self.hooks.priority(alert)
        except Exception as exc:
            _log.error("priority hook raised; keeping the alert's priority", error=describe(exc))
            return alert
        if priority is None or priority == alert.priority:
            return alert
        return attrs.evolve(alert, priority=priority)

    def _verdict_for(self, alert: Alert, is_test: bool) -> Verdict:
        try:
            verdict = self.hooks.filter(alert, is_test=is_test)
        except Exception as exc:
            _log.error("filter raised; sending the alert anyway", error=describe(exc))
            return Verdict.send("a filter failed")
        return verdict if verdict is not None else Verdict.send()

    def destinations_for(self, alert: Alert) -> list[Destination]:
        """Where ``alert`` goes: the ``chaperone_route`` hook's answer, else (none
        answered, or the hook raised) the built-in routes.
        """
        try:
            destinations = self.hooks.route(alert)
        except Exception as exc:
            _log.error("route hook raised; using the default route", error=describe(exc))
            destinations = None
        if destinations is None:
            destinations = list(
                builtin_routing.chaperone_route(alert=alert, runtime=self.hooks.runtime)
            )
        return destinations
