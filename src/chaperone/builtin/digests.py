"""The alerts that stand for other alerts: a group's digest and a maintenance summary.

A digest lists each held alert as one field, at most ``alerting.grouping.digest_size``
to a message, so every channel shows all of them within its limits: a bigger group
becomes several numbered messages, never a truncated one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from chaperone._alerts import Alert, Priority, Severity
from chaperone._durations import format_duration, format_time
from chaperone._events import AlertsGrouped, MaintenanceEnded

__all__ = [
    "DIGEST_TYPE",
    "MAINTENANCE_TYPE",
    "digest_alerts",
    "maintenance_summary_alert",
]

DIGEST_TYPE = "alert_digest"
"""The type of a digest whose alerts are of several types."""
MAINTENANCE_TYPE = "maintenance"
"""The type of a maintenance window's summary."""

_SEVERITY_ORDER = (Severity.CRITICAL, Severity.ERROR, Severity.WARNING, Severity.INFO)
_PRIORITY_ORDER = (Priority.CRITICAL, Priority.HIGH, Priority.NORMAL, Priority.LOW)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _common(values: Iterable[str | None]) -> str | None:
    distinct = set(values)
    return distinct.pop() if len(distinct) == 1 else None


def _common_labels(alerts: Sequence[Alert]) -> dict[str, str]:
    first = dict(alerts[0].labels)
    return {
        name: value
        for name, value in first.items()
        if all(alert.labels.get(name) == value for alert in alerts[1:])
    }


def _span(event: AlertsGrouped, now: datetime) -> timedelta:
    elapsed = now - event.window_started
    if elapsed <= timedelta(0):
        return event.window
    return min(elapsed, event.window) if event.window > timedelta(0) else elapsed


def digest_alerts(event: AlertsGrouped, now: datetime, size: int) -> list[Alert]:
    """The digest messages for a group's held alerts, ``size`` alerts to a message."""
    held = sorted(event.alerts, key=lambda alert: alert.occurred_at)
    if not held:
        return []
    total = len(held)
    alert_type = _common(alert.type for alert in held) or DIGEST_TYPE
    job_class = _common(alert.job_class for alert in held)
    service = _common(alert.service for alert in held)
    subject = job_class or service or event.group_key
    span = format_duration(_span(event, now))
    severity = min((alert.severity for alert in held), key=_SEVERITY_ORDER.index)
    priority = min((alert.priority for alert in held), key=_PRIORITY_ORDER.index)
    chunks = [held[start : start + size] for start in range(0, total, max(1, size))]
    earlier = (
        f" {_plural(event.sent_individually, 'earlier alert')} of this group went out one by one."
        if event.sent_individually
        else ""
    )
    digests = []
    for number, chunk in enumerate(chunks, start=1):
        part = f" (part {number} of {len(chunks)})" if len(chunks) > 1 else ""
        first = (number - 1) * size + 1
        listed = f"alerts {first} to {first + len(chunk) - 1}" if len(chunks) > 1 else "all of them"
        digests.append(
            Alert(
                type=alert_type,
                key=f"digest:{event.group_key}:{event.window_started.isoformat()}:{number}",
                headline="Alert Digest",
                title=f"{_plural(total, alert_type + ' alert')} for {subject} in the last "
                f"{span}{part}",
                summary=f"{_plural(total, 'alert')} of one group were held back to spare "
                f"you a flood; this message lists {listed}.{earlier}",
                severity=severity,
                priority=priority,
                fields=[
                    (format_time(alert.occurred_at), f"{alert.title} (key {alert.key})")
                    for alert in chunk
                ],
                job_class=job_class,
                service=service,
                labels=_common_labels(held),
                runbook_url=_common(alert.runbook_url for alert in held),
                occurred_at=now,
                digest_of=total,
            )
        )
    return digests


def maintenance_summary_alert(event: MaintenanceEnded, now: datetime) -> Alert:
    """The summary delivered when a maintenance window ends."""
    reason = f" ({event.reason})" if event.reason else ""
    fields: list[tuple[str, str]] = [
        ("Window", event.window_id),
        ("Matched", event.matches),
        ("Started", format_time(event.started_at)),
        ("Ended", format_time(event.ended_at)),
        ("Suppressed", str(event.suppressed)),
    ]
    fields.extend((f"Suppressed {alert_type}", str(count)) for alert_type, count in event.by_type)
    fields.extend(
        (f"Example {number}", title) for number, title in enumerate(event.examples, start=1)
    )
    return Alert(
        type=MAINTENANCE_TYPE,
        key=event.window_id,
        headline="Maintenance Window Ended",
        title=f"Maintenance window ended: {_plural(event.suppressed, 'alert')} suppressed",
        summary=f"The maintenance window {event.window_id}{reason} ended; while it was on "
        f"it suppressed {_plural(event.suppressed, 'alert')} matching {event.matches}.",
        explanation="Anything still wrong will alert again; check the jobs it hid if the "
        "count is higher than the work you expected.",
        severity=Severity.INFO,
        fields=fields,
        occurred_at=now,
        digest_of=event.suppressed,
    )
