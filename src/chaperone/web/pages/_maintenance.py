"""The maintenance page: windows on now, recurring ones ahead, those recently ended."""

from __future__ import annotations

from datetime import datetime

import attrs

from chaperone.config import Settings
from chaperone.maintenance import (
    ADHOC,
    Window,
    active_windows,
    load_windows,
    next_occurrence,
    suppressed,
)
from chaperone.store import Store
from chaperone.web.pages._moments import Moment, moment

__all__ = ["MaintenancePage", "Scheduled", "WindowRow", "maintenance_page", "window_row"]


@attrs.frozen
class WindowRow:
    """One maintenance window."""

    id: str
    kind: str
    name: str | None
    reason: str
    matches: str
    started: Moment | None
    ends: Moment | None
    suppressed: int
    ended_early: bool

    @property
    def can_end(self) -> bool:
        """Whether the page offers to end it by hand (ad-hoc windows)."""
        return self.kind == ADHOC


def window_row(window: Window, now: datetime, suppressed_count: int) -> WindowRow:
    """``window`` as the pages show it, with how many alerts it suppressed."""
    return WindowRow(
        id=window.id,
        kind=window.kind,
        name=window.name,
        reason=window.reason,
        matches=window.match.describe(),
        started=moment(window.started_at, now),
        ends=moment(window.end, now),
        suppressed=suppressed_count,
        ended_early=window.ended_at is not None and window.ended_at < window.ends_at,
    )


@attrs.frozen
class Scheduled:
    """A recurring window from the configuration, and its next occurrence."""

    name: str
    reason: str
    matches: str
    next_start: Moment | None
    next_end: Moment | None


@attrs.frozen
class MaintenancePage:
    """Everything the maintenance page shows."""

    active: tuple[WindowRow, ...]
    scheduled: tuple[Scheduled, ...]
    ended: tuple[WindowRow, ...]


def maintenance_page(settings: Settings, store: Store, now: datetime) -> MaintenancePage:
    """The windows on at ``now`` (ad-hoc ones can be ended), the recurring windows with
    their next occurrence, and the windows that ended in the last week, latest first.
    """
    active = active_windows(settings, store, now)
    scheduled = []
    for recurring in settings.maintenance:
        upcoming = next_occurrence(recurring, now)
        scheduled.append(
            Scheduled(
                name=recurring.name,
                reason=recurring.reason,
                matches=recurring.match.describe(),
                next_start=None if upcoming is None else moment(upcoming.start, now),
                next_end=None if upcoming is None else moment(upcoming.end, now),
            )
        )
    ended = sorted(
        (window for window in load_windows(store) if window.end <= now),
        key=lambda window: window.end,
        reverse=True,
    )
    return MaintenancePage(
        active=tuple(
            window_row(window, now, suppressed(store, window.id).total) for window in active
        ),
        scheduled=tuple(scheduled),
        ended=tuple(
            window_row(window, now, suppressed(store, window.id).total) for window in ended
        ),
    )
