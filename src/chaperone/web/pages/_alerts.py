"""The alert history as the pages show it: each alert once, with its deliveries per
channel beside it. What people did (an acknowledgement, its undoing: a record with ``by``
and no channel) is an entry of its own, its deliveries those of the alert that passed it
on to the services.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import attrs

from chaperone.web.pages._moments import Moment, moment

__all__ = ["AlertRow", "Delivery", "about_incident", "about_job", "group_alerts"]


@attrs.frozen
class Delivery:
    """One channel's delivery of an alert."""

    channel: str
    route: str
    status: str
    attempts: int
    detail: str
    fallback_of: str | None
    recorded: Moment | None


@attrs.frozen
class AlertRow:
    """One alert of the history, with every delivery recorded for it."""

    type: str
    key: str
    status: str
    """``firing`` or ``resolved``."""
    severity: str
    priority: str
    title: str
    summary: str
    fields: dict[str, str]
    occurred: Moment | None
    deliveries: tuple[Delivery, ...]
    by: str | None = None
    """Who acted, for a person's action (its deliveries: where it was passed on)."""
    note: str = ""
    """The note given with the action."""

    @property
    def failed(self) -> int:
        """Deliveries that failed."""
        return sum(1 for delivery in self.deliveries if delivery.status != "delivered")


def _text(record: Mapping[str, Any], name: str) -> str:
    value = record.get(name)
    return "" if value is None else str(value)


def _delivery(record: Mapping[str, Any], now: datetime) -> Delivery:
    attempts = record.get("attempts")
    fallback = record.get("fallback_of")
    return Delivery(
        channel=_text(record, "channel"),
        route=_text(record, "route"),
        status=_text(record, "status"),
        attempts=attempts if isinstance(attempts, int) else 1,
        detail=_text(record, "detail"),
        fallback_of=None if fallback is None else str(fallback),
        recorded=moment(record.get("recorded_at"), now),
    )


def group_alerts(records: Iterable[Mapping[str, Any]], now: datetime) -> list[AlertRow]:
    """History ``records`` (newest first, one per delivery) as alerts, newest first: the
    records of one alert (same type, key, status and time) become its deliveries.
    """
    order: list[tuple[str, str, str, str]] = []
    grouped: dict[tuple[str, str, str, str], list[Mapping[str, Any]]] = {}
    for record in records:
        identity = (
            _text(record, "type"),
            _text(record, "key"),
            _text(record, "alert_status"),
            _text(record, "occurred_at"),
        )
        if identity not in grouped:
            order.append(identity)
            grouped[identity] = []
        grouped[identity].append(record)
    rows = []
    for identity in order:
        group = grouped[identity]
        first = group[0]
        fields = first.get("fields")
        action = next((record for record in group if record.get("by") is not None), None)
        rows.append(
            AlertRow(
                type=identity[0],
                key=identity[1],
                status=identity[2],
                severity=_text(first, "severity"),
                priority=_text(first, "priority"),
                title=_text(first, "title"),
                summary=_text(first, "summary"),
                fields={str(k): str(v) for k, v in fields.items()}
                if isinstance(fields, dict)
                else {},
                occurred=moment(first.get("occurred_at"), now),
                deliveries=tuple(
                    _delivery(record, now) for record in reversed(group) if record.get("channel")
                ),
                by=None if action is None else _text(action, "by"),
                note="" if action is None else _text(action, "note"),
            )
        )
    return rows


def about_job(record: Mapping[str, Any], supervision_id: str) -> bool:
    """Whether a history record is about the job ``supervision_id``: its key is the id
    (or starts with it, as a resource violation's ``<id>:memory``), or its fields carry it.
    """
    key = _text(record, "key")
    if key == supervision_id or key.startswith(f"{supervision_id}:"):
        return True
    fields = record.get("fields")
    return isinstance(fields, dict) and fields.get("Supervision ID") == supervision_id


def about_incident(record: Mapping[str, Any], alert_type: str, key: str) -> bool:
    """Whether a history record is an alert of the incident ``alert_type``/``key``."""
    return _text(record, "type") == alert_type and _text(record, "key") == key
