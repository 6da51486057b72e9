"""The incident page: one open incident, its alerts and their deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Final

import attrs

from chaperone.builtin.database_channel import read_history
from chaperone.store import Store
from chaperone.web.pages._alerts import AlertRow, about_incident, group_alerts
from chaperone.web.pages._shapes import IncidentView

__all__ = ["IncidentPage", "incident_page"]

HISTORY_SCAN: Final = 1000
"""History records read to find an incident's alerts (the newest)."""


@attrs.frozen
class IncidentPage:
    """Everything the incident page shows."""

    incident: IncidentView
    alerts: tuple[AlertRow, ...]


def incident_page(store: Store, incident: IncidentView, now: datetime) -> IncidentPage:
    """The page of ``incident``: it, and its alerts in the history, newest first."""
    history = read_history(store, HISTORY_SCAN)
    return IncidentPage(
        incident=incident,
        alerts=tuple(
            group_alerts(
                (
                    record
                    for record in history
                    if about_incident(record, incident.type, incident.key)
                ),
                now,
            )
        ),
    )
