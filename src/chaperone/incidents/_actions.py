"""What a person does to an open incident: acknowledge it, take that back, silence it.

An acknowledgement is recorded on the incident (the built-in filter
:mod:`chaperone.builtin.open_incidents` then suppresses its firing alerts, repeats
included, until it resolves or the acknowledgement is undone), written to the history,
and passed on, through the outbox (durable, retried), to the destinations that carried
the incident and whose channel takes acknowledgements (PagerDuty, Opsgenie, the log).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

import attrs

from chaperone import _delivery, _sanitize
from chaperone._alerts import Alert, AlertStatus
from chaperone._delivery import DeliveryResult
from chaperone._matching import AlertMatcher
from chaperone._verdicts import Destination
from chaperone.builtin.database_channel import HISTORY_STREAM
from chaperone.incidents._records import (
    Acknowledgement,
    Incident,
    clear_acknowledgement,
    find_incident,
    set_acknowledgement,
)
from chaperone.maintenance import Window, start_window

if TYPE_CHECKING:
    from chaperone._chaperone import Chaperone

__all__ = [
    "PASS_ON_WAIT",
    "ActionResult",
    "UnknownIncidentError",
    "acknowledge",
    "acknowledge_incident",
    "escape_glob",
    "passed_on_to",
    "silence",
    "unacknowledge",
    "unacknowledge_incident",
]

PASS_ON_WAIT: Final = 10.0
"""Seconds an action waits for the services it passes on to by default; a delivery not
done by then goes on from the outbox."""

_GLOB = re.compile(r"([*?\[])")


class UnknownIncidentError(LookupError):
    """No open incident has the type and key given."""

    def __init__(self, alert_type: str, key: str) -> None:
        super().__init__(f"no open incident {alert_type}:{_sanitize.line(key)}")
        self.alert_type = alert_type
        self.key = key


@attrs.frozen(kw_only=True)
class ActionResult:
    """What an acknowledgement (or its undoing) did."""

    incident: Incident
    """The incident as it stands after the action."""
    changed: bool
    """False when there was nothing to do: already acknowledged (by someone else, maybe,
    at the same moment) or not acknowledged at all."""
    deliveries: tuple[DeliveryResult, ...] = ()
    """Each service it was passed on to, and how that went (or stands)."""


def escape_glob(text: str) -> str:
    """``text`` as a glob pattern that matches exactly ``text``."""
    return _GLOB.sub(r"[\1]", text)


def passed_on_to(chaperone: Chaperone, incident: Incident, status: AlertStatus) -> list[str]:
    """The destinations of ``incident`` (as it names them) whose channel takes alerts of
    ``status``.
    """
    classes = chaperone.plugins.channel_classes
    return [
        name
        for name in incident.delivered_to
        if (channel_class := classes.get(name.partition("@")[0])) is not None
        and channel_class.accepts(status)
    ]


def acknowledge_incident(
    chaperone: Chaperone,
    alert_type: str,
    key: str,
    *,
    by: str,
    note: str = "",
    wait: float | None = PASS_ON_WAIT,
) -> ActionResult:
    """Acknowledge the open incident ``alert_type`` / ``key`` as ``by``: once, whoever
    else does it at the same moment. Raise :class:`UnknownIncidentError` when it is not
    open.
    """
    incident = _open_incident(chaperone, alert_type, key)
    now = chaperone.clock.now()
    ack = Acknowledgement(by=_sanitize.line(by), at=now, note=_sanitize.text(note))
    if not set_acknowledgement(chaperone.store, alert_type, key, ack):
        return ActionResult(incident=_open_incident(chaperone, alert_type, key), changed=False)
    incident = attrs.evolve(
        incident, acknowledged_by=ack.by, acknowledged_at=ack.at, ack_note=ack.note
    )
    _record_history(chaperone, incident, AlertStatus.ACKNOWLEDGED, ack)
    deliveries = _pass_on(chaperone, incident, AlertStatus.ACKNOWLEDGED, ack, wait)
    return ActionResult(incident=incident, changed=True, deliveries=deliveries)


def unacknowledge_incident(
    chaperone: Chaperone,
    alert_type: str,
    key: str,
    *,
    by: str,
    wait: float | None = PASS_ON_WAIT,
) -> ActionResult:
    """Take back the acknowledgement of the open incident ``alert_type`` / ``key``: its
    repeats resume. Raise :class:`UnknownIncidentError` when it is not open.
    """
    incident = _open_incident(chaperone, alert_type, key)
    if not clear_acknowledgement(chaperone.store, alert_type, key):
        return ActionResult(incident=incident, changed=False)
    undo = Acknowledgement(by=_sanitize.line(by), at=chaperone.clock.now())
    incident = attrs.evolve(incident, acknowledged_by=None, acknowledged_at=None, ack_note="")
    _record_history(chaperone, incident, AlertStatus.UNACKNOWLEDGED, undo)
    deliveries = _pass_on(chaperone, incident, AlertStatus.UNACKNOWLEDGED, undo, wait)
    return ActionResult(incident=incident, changed=True, deliveries=deliveries)


def acknowledge(
    chaperone: Chaperone,
    type: str,
    key: str,
    *,
    by: str,
    note: str = "",
    wait: float | None = PASS_ON_WAIT,
) -> Incident:
    """Acknowledge the open incident ``type`` / ``key`` (see :func:`acknowledge_incident`);
    return it as it stands.
    """
    return acknowledge_incident(chaperone, type, key, by=by, note=note, wait=wait).incident


def unacknowledge(
    chaperone: Chaperone,
    type: str,
    key: str,
    *,
    by: str,
    wait: float | None = PASS_ON_WAIT,
) -> Incident:
    """Undo the acknowledgement of ``type`` / ``key`` (see :func:`unacknowledge_incident`);
    return the incident as it stands.
    """
    return unacknowledge_incident(chaperone, type, key, by=by, wait=wait).incident


def silence(
    chaperone: Chaperone,
    type: str,
    key: str,
    *,
    by: str,
    duration: timedelta,
    reason: str = "",
) -> Window:
    """Open a maintenance window of ``duration`` that suppresses exactly the open
    incident ``type`` / ``key``; return it. Raise :class:`UnknownIncidentError` when the
    incident is not open, ValueError for a duration that is not positive.
    """
    _open_incident(chaperone, type, key)
    matcher = AlertMatcher(patterns=(("type", (escape_glob(type),)), ("key", (escape_glob(key),))))
    because = f"silenced by {_sanitize.line(by)}"
    if reason.strip():
        because += f": {reason.strip()}"
    return start_window(chaperone.store, chaperone.clock.now(), duration, matcher, because)


# -- the steps -------------------------------------------------------------------------


def _open_incident(chaperone: Chaperone, alert_type: str, key: str) -> Incident:
    incident = find_incident(chaperone.store, alert_type, key)
    if incident is None:
        raise UnknownIncidentError(alert_type, key)
    return incident


def _action_alert(
    incident: Incident, status: AlertStatus, ack: Acknowledgement, now: datetime
) -> Alert:
    """The alert that tells the services of the action."""
    acknowledged = status is AlertStatus.ACKNOWLEDGED
    verb = "acknowledged" if acknowledged else "no longer acknowledged"
    summary = f"{incident.title}: {verb} by {ack.by}" + (f": {ack.note}" if ack.note else "")
    fields = [("Acknowledged by" if acknowledged else "Undone by", ack.by)]
    if ack.note:
        fields.append(("Note", ack.note))
    return Alert(
        type=incident.type,
        key=incident.key,
        headline=verb.capitalize(),
        title=incident.title or incident.incident_key,
        summary=summary,
        occurred_at=now,
        severity=incident.severity,
        priority=incident.priority,
        status=status,
        fields=tuple(fields),
        supervision_id=incident.supervision_id,
    )


def _destinations(
    chaperone: Chaperone, incident: Incident, status: AlertStatus
) -> list[Destination]:
    destinations = []
    for name in passed_on_to(chaperone, incident, status):
        channel, _, route = name.partition("@")
        route = route or "default"
        settings = chaperone.channels.route_settings(route, channel)
        destinations.append(Destination(channel=channel, route=route, settings=settings))
    return destinations


def _pass_on(
    chaperone: Chaperone,
    incident: Incident,
    status: AlertStatus,
    ack: Acknowledgement,
    wait: float | None,
) -> tuple[DeliveryResult, ...]:
    """Write the action's alert to the outbox for each destination that takes it, then
    deliver them, waiting at most ``wait`` seconds.
    """
    destinations = _destinations(chaperone, incident, status)
    if not destinations:
        return ()
    alert = _action_alert(incident, status, ack, ack.at)
    context = chaperone.dispatcher.delivery
    future = chaperone.submit(_delivery.deliver(context, alert, destinations, wait=wait))
    return tuple(future.result())


def _record_history(
    chaperone: Chaperone, incident: Incident, status: AlertStatus, ack: Acknowledgement
) -> None:
    """Append the action to the alert history, beside the deliveries."""
    at = ack.at.isoformat()
    detail = f"{status.value} by {ack.by}" + (f": {ack.note}" if ack.note else "")
    record = {
        "type": incident.type,
        "key": incident.key,
        "channel": "",
        "route": "",
        "status": status.value,
        "alert_status": status.value,
        "severity": incident.severity,
        "priority": incident.priority,
        "title": incident.title,
        "summary": incident.summary,
        "fields": dict(incident.fields),
        "occurred_at": at,
        "recorded_at": at,
        "attempts": 0,
        "detail": _sanitize.line(detail),
        "by": ack.by,
        "note": ack.note,
    }
    chaperone.store.append(
        HISTORY_STREAM, _sanitize.dumps(record), chaperone.settings.history_limit
    )
