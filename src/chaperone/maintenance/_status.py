"""What ``chaperone maintenance status`` shows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chaperone.config._settings import Settings
from chaperone.maintenance._recurring import current_occurrence, next_occurrence
from chaperone.maintenance._windows import (
    ADHOC,
    Suppressed,
    Window,
    active_windows,
    iso,
    occurrence_windows,
    suppressed,
)
from chaperone.store import Store

__all__ = ["describe_window", "status"]


def describe_window(window: Window, now: datetime, counts: Suppressed | None) -> dict[str, Any]:
    """One window as ``maintenance status --json`` shows it (``counts``: what it
    suppressed so far, None when not known).
    """
    active = window.is_active(now)
    return {
        "id": window.id,
        "kind": window.kind,
        "name": window.name,
        "active": active,
        "from": iso(window.started_at),
        "to": iso(window.end),
        "remaining": round((window.end - now).total_seconds()) if active else None,
        "reason": window.reason,
        "match": window.match.to_dict(),
        "matches": window.match.describe(),
        "summary": window.summary,
        "suppressed": None if counts is None else counts.total,
        "suppressed_by_type": None if counts is None else dict(counts.by_type),
        "next_from": None,
        "next_to": None,
    }


def status(settings: Settings, store: Store, now: datetime) -> list[dict[str, Any]]:
    """What ``chaperone maintenance status --json`` prints: each ad-hoc window on now,
    then each recurring window; those on now with what they suppressed so far, and every
    recurring one with its next occurrence in ``next_from`` and ``next_to``.
    """
    rows = [
        describe_window(window, now, suppressed(store, window.id))
        for window in active_windows(settings, store, now)
        if window.kind == ADHOC
    ]
    for recurring in settings.maintenance:
        occurrence = current_occurrence(recurring, now)
        windows = [] if occurrence is None else occurrence_windows(store, [occurrence])
        if windows and windows[0].is_active(now):
            row = describe_window(windows[0], now, suppressed(store, windows[0].id))
            upcoming = next_occurrence(recurring, windows[0].ends_at)
        else:
            upcoming = next_occurrence(recurring, now)
            if upcoming is None:
                continue
            row = describe_window(Window.of_occurrence(upcoming), now, None)
            row.update({"active": False, "from": None, "to": None})
        if upcoming is not None:
            row["next_from"] = iso(upcoming.start)
            row["next_to"] = iso(upcoming.end)
        rows.append(row)
    return rows
