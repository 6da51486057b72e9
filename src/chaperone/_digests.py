"""The alerts that stand for other alerts: a group's digest and a maintenance summary.

A digest lists each held alert as one field (its time, then its title and key), at most
``alerting.grouping.digest_size`` to a message, and never more than every channel shows
whole: :data:`MAX_ENTRIES` fields (Slack shows 20) of :data:`ENTRY_TEXT_BUDGET`
characters in all (Discord allows 6,000 across a message). A bigger group becomes
several numbered messages, never a truncated one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from chaperone._alerts import Alert, Priority, Severity
from chaperone._durations import format_duration, format_time
from chaperone._events import AlertsGrouped, MaintenanceEnded
from chaperone.channels.text import fit, utf16_length
from chaperone.config._settings import MAX_DIGEST_SIZE

__all__ = [
    "DIGEST_TYPE",
    "ENTRY_TEXT_BUDGET",
    "MAINTENANCE_TYPE",
    "MAX_ENTRIES",
    "digest_alerts",
    "maintenance_summary_alert",
]

DIGEST_TYPE = "alert_digest"
"""The type of a digest whose alerts are of several types."""
MAINTENANCE_TYPE = "maintenance"
"""The type of a maintenance window's summary."""
MAX_ENTRIES = MAX_DIGEST_SIZE
"""The most alerts one digest message lists, whatever ``digest_size`` says: Slack shows
20 fields of a message (mail 40, Discord 25 an embed)."""
ENTRY_TEXT_BUDGET = 3_000
"""The most characters (UTF-16 code units) of entries, field names and values, in one
digest message: Discord allows 6,000 across a message's embeds, its title, description
and footer included; Opsgenie 8,000 across its details."""
TITLE_IN_ENTRY = 200
"""An alert's title is cut to this in its entry, so the key after it always shows."""

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


def _entry(number: int, alert: Alert) -> tuple[str, str]:
    """One listed alert: ``#7 2024-01-15 10:30:00 UTC`` (numbered, so two alerts of one
    second stay two entries wherever fields are keyed by name), then its key and title.

    The key comes first: a channel that must shorten the entry (Slack escapes ``&`` into
    five characters) cuts the title, never the key that names the alert.
    """
    title = fit(alert.title, TITLE_IN_ENTRY)
    return f"#{number} {format_time(alert.occurred_at)}", f"(key {alert.key}) {title}"


def _chunks(entries: list[tuple[str, str]], size: int) -> list[list[tuple[str, str]]]:
    """``entries`` in order, at most ``size`` (and :data:`MAX_ENTRIES`) to a chunk and
    :data:`ENTRY_TEXT_BUDGET` UTF-16 units, a longer entry alone in its chunk.
    """
    most = max(1, min(size, MAX_ENTRIES))
    chunks: list[list[tuple[str, str]]] = []
    current: list[tuple[str, str]] = []
    used = 0
    for entry in entries:
        cost = utf16_length(entry[0]) + utf16_length(entry[1])
        if current and (len(current) == most or used + cost > ENTRY_TEXT_BUDGET):
            chunks.append(current)
            current, used = [], 0
        current.append(entry)
        used += cost
    if current:
        chunks.append(current)
    return chunks


def _flush_id(held: Sequence[Alert]) -> str:
    """Tells apart two flushes of one window, so each digest is a new incident for the
    channels that deduplicate on the key (PagerDuty, Opsgenie).
    """
    members = "\n".join(f"{alert.incident_key}@{alert.occurred_at.isoformat()}" for alert in held)
    return hashlib.sha256(members.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def digest_alerts(event: AlertsGrouped, now: datetime, size: int) -> list[Alert]:
    """The digest messages for a group's held alerts, at most ``size`` alerts to a message
    (fewer when :data:`MAX_ENTRIES` or :data:`ENTRY_TEXT_BUDGET` says so).
    """
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
    chunks = _chunks([_entry(number, alert) for number, alert in enumerate(held, 1)], size)
    flush = _flush_id(held)
    headline = f"{_plural(total, alert_type + ' alert')} for {subject} in the last {span}"
    earlier = (
        f" {_plural(event.sent_individually, 'earlier alert')} of this group went out one by one."
        if event.sent_individually
        else ""
    )
    digests = []
    first = 1
    for number, chunk in enumerate(chunks, start=1):
        part = f" (part {number} of {len(chunks)})" if len(chunks) > 1 else ""
        listed = f"alerts {first} to {first + len(chunk) - 1}" if len(chunks) > 1 else "all of them"
        first += len(chunk)
        digests.append(
            Alert(
                type=alert_type,
                key=f"digest:{event.group_key}:{event.window_started.isoformat()}:{flush}:{number}",
                headline="Alert Digest",
                title=f"{headline}{part}",
                summary=f"{headline} {'was' if total == 1 else 'were'} held back to spare "
                f"you a flood; this message lists {listed}.{earlier}",
                severity=severity,
                priority=priority,
                fields=chunk,
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
    if event.missed_runs:
        fields.append(("Missed Runs", "\n".join(event.missed_runs)))
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
