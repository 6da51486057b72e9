"""What the pages read of an open incident: the shape of ``chaperone.incidents.Incident``,
so the page data depends on no more of it than it shows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

__all__ = ["IncidentView"]


class IncidentView(Protocol):
    """An open incident as the pages show it."""

    @property
    def type(self) -> str:
        """The alert type."""
        ...

    @property
    def key(self) -> str:
        """The alert key (a supervision id, a service, ...)."""
        ...

    @property
    def title(self) -> str:
        """The alert's title."""
        ...

    @property
    def summary(self) -> str:
        """The alert's summary."""
        ...

    @property
    def severity(self) -> str:
        """critical, error, warning or info."""
        ...

    @property
    def priority(self) -> str:
        """critical, high, normal or low."""
        ...

    @property
    def opened_at(self) -> datetime:
        """When it fired first."""
        ...

    @property
    def last_alert_at(self) -> datetime:
        """When it fired last."""
        ...

    @property
    def alerts(self) -> int:
        """Firing alerts seen."""
        ...

    @property
    def supervision_id(self) -> str | None:
        """The job it is about, if any."""
        ...

    @property
    def fields(self) -> dict[str, str]:
        """The alert's fields."""
        ...

    @property
    def acknowledged_by(self) -> str | None:
        """Who acknowledged it, if anyone."""
        ...

    @property
    def acknowledged_at(self) -> datetime | None:
        """When it was acknowledged."""
        ...

    @property
    def ack_note(self) -> str:
        """The note given with the acknowledgement."""
        ...

    @property
    def delivered_to(self) -> tuple[str, ...]:
        """The channels it went to (``channel@route`` for a named route)."""
        ...

    @property
    def state(self) -> str:
        """``"firing"`` or ``"acknowledged"``."""
        ...
