"""Ending maintenance windows, and claiming the summary of each exactly once."""

from __future__ import annotations

import json
from datetime import datetime

import attrs

from chaperone._events import MaintenanceEnded
from chaperone.config._settings import Settings
from chaperone.maintenance._windows import (
    ADHOC,
    ENDED,
    ENDS_INDEX,
    KEEP,
    RECURRING,
    SUMMARY,
    Suppressed,
    UnknownWindowError,
    Window,
    current_windows,
    iso,
    load_windows,
    occurrence_windows,
    seconds,
    stored_window,
    suppressed,
    ttl_of,
)
from chaperone.store import Store

__all__ = ["Ending", "claim_summary", "due_summaries", "end_windows", "find_window"]

_DUE_PER_TICK = 100
"""Windows summarised per monitor tick; the rest wait for the next."""


@attrs.frozen(kw_only=True)
class Ending:
    """What ``end_windows`` did with one window."""

    window: Window
    ended_now: bool
    """True when this call ended it; False when it had ended before."""
    suppressed: Suppressed
    event: MaintenanceEnded | None
    """The summary to deliver, when this call claimed it and summaries are on."""
    note: str = ""
    """Why there is no summary to deliver."""


def claim_summary(
    settings: Settings, store: Store, window: Window, now: datetime
) -> tuple[MaintenanceEnded | None, Suppressed, str]:
    """Claim the end-of-window summary of ``window`` (exactly one caller across every
    process wins) and return it as an event to dispatch, with what the window suppressed
    and, when there is no summary to send, why not.
    """
    claim = json.dumps({"claimed_at": iso(now)})
    if not store.set_if_absent(f"{SUMMARY}{window.id}", claim, seconds(KEEP)):
        return None, suppressed(store, window.id), "its summary was already claimed"
    store.unschedule(ENDS_INDEX, window.id)
    counts = suppressed(store, window.id)
    if not settings.maintenance_summary:
        return None, counts, "summaries are off (alerting.maintenance_summary)"
    if not window.summary:
        return None, counts, "this window's summary is off"
    if window.kind == RECURRING and counts.total == 0:
        return None, counts, "it suppressed nothing"
    event = MaintenanceEnded(
        window_id=window.id,
        started_at=window.started_at,
        ended_at=min(window.end, now),
        reason=window.reason,
        matches=window.match.describe(),
        suppressed=counts.total,
        by_type=counts.by_type,
        examples=counts.examples,
        missed_runs=counts.missed,
        occurred_at=now,
    )
    return event, counts, ""


def _summary_claimed(store: Store, window_ids: list[str]) -> set[str]:
    keys = [f"{SUMMARY}{window_id}" for window_id in window_ids]
    return {key[len(SUMMARY) :] for key in store.get_many(keys)} if keys else set()


def find_window(settings: Settings, store: Store, window_id: str, now: datetime) -> Window:
    """The window with id ``window_id``: stored, or an occurrence of a recurring window in
    force now. Raises :class:`UnknownWindowError`.
    """
    stored = stored_window(store, window_id)
    if stored is not None:
        return stored
    for window in occurrence_windows(store, current_windows(settings, now)):
        if window.id == window_id:
            return window
    raise UnknownWindowError(f"no maintenance window {window_id!r}")


def _end(store: Store, window: Window, now: datetime) -> tuple[Window, bool]:
    if not window.is_active(now):
        return window, False
    ended_now = store.set_if_absent(f"{ENDED}{window.id}", iso(now), ttl_of(window, now))
    # Due at once: should this process die before claiming the summary, a monitor sends it.
    store.schedule(ENDS_INDEX, window.id, now.timestamp())
    text = store.get(f"{ENDED}{window.id}")
    ended_at = datetime.fromisoformat(text) if text is not None else now
    return attrs.evolve(window, ended_at=ended_at), ended_now


def end_windows(
    settings: Settings, store: Store, now: datetime, window_id: str | None = None
) -> list[Ending]:
    """End window ``window_id`` now (ad-hoc or a recurring occurrence in force), or with
    no id every ad-hoc window that is on; claim each one's summary.

    Without an id, windows that ended earlier and whose summary nobody sent yet (no
    monitor was running) are summarised too. Raises :class:`UnknownWindowError`.
    """
    if window_id is not None:
        targets = [find_window(settings, store, window_id, now)]
    else:
        stored = load_windows(store)
        claimed = _summary_claimed(store, [window.id for window in stored])
        targets = [
            window
            for window in stored
            if (window.kind == ADHOC and window.is_active(now))
            or (window.end <= now and window.id not in claimed)
        ]
    endings = []
    for target in targets:
        window, ended_now = _end(store, target, now)
        event, counts, note = claim_summary(settings, store, window, now)
        endings.append(
            Ending(window=window, ended_now=ended_now, suppressed=counts, event=event, note=note)
        )
    return endings


def due_summaries(
    settings: Settings, store: Store, now: datetime, limit: int = _DUE_PER_TICK
) -> list[MaintenanceEnded]:
    """The summaries of windows that ended by ``now`` and that nobody claimed yet, each
    claimed by this call. One deadline-index read when no window is due.
    """
    events = []
    for member, _at in store.due(ENDS_INDEX, now.timestamp(), limit):
        window = stored_window(store, member)
        if window is None:
            store.unschedule(ENDS_INDEX, member)
            continue
        if window.end > now:
            store.schedule(ENDS_INDEX, member, window.end.timestamp())
            continue
        event, _counts, _note = claim_summary(settings, store, window, now)
        store.unschedule(ENDS_INDEX, member)
        if event is not None:
            events.append(event)
    return events
