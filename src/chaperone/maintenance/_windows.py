"""Maintenance windows in the store: the ad-hoc ones ``chaperone maintenance start`` opens,
the occurrences of recurring ones that suppressed something, what each suppressed, and
the claim on each window's end-of-window summary.

Keys (all under ``maintenance:``)::

    maintenance:window:<id>          the window, JSON; kept a week past its end
    maintenance:ended:<id>           when ``maintenance end`` ended it early
    maintenance:count:<id>           how many alerts it suppressed
    maintenance:types:<id>|<type>    ... of each alert type
    maintenance:example:<id>|<nnn>   the titles of the first few
    maintenance:summary:<id>         the claim on its summary: exactly one process sends it
    maintenance:resolve:<type>:<key> a firing alert of this incident was suppressed
    maintenance:ends                 deadline index: window id at its end time

Every change is one atomic store operation (set-if-absent, incr), so any number of
processes and monitors sharing the store count every suppression once and send each
summary once.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Final

import attrs

from chaperone._alerts import Alert
from chaperone._matching import AlertMatcher, parse_match
from chaperone.config._settings import RecurringWindow, Settings
from chaperone.maintenance._recurring import Occurrence, current_occurrence
from chaperone.store import Store

__all__ = [
    "ADHOC",
    "ENDED",
    "ENDS_INDEX",
    "KEEP",
    "MAX_EXAMPLES",
    "RECURRING",
    "RESOLVE_MEMORY",
    "SUMMARY",
    "Suppressed",
    "UnknownWindowError",
    "Window",
    "active_windows",
    "current_windows",
    "forget_resolve",
    "iso",
    "load_windows",
    "new_window_id",
    "occurrence_windows",
    "record_suppression",
    "seconds",
    "start_window",
    "stored_window",
    "suppressed",
    "take_resolve",
    "ttl_of",
    "window_for",
]

ADHOC: Final = "ad-hoc"
"""The kind of a window opened with ``chaperone maintenance start``."""
RECURRING: Final = "recurring"
"""The kind of an occurrence of an ``[[alerting.maintenance]]`` window."""
KEEP: Final = timedelta(days=7)
"""How long a window and its counts stay in the store after it ends (for its summary)."""
RESOLVE_MEMORY: Final = timedelta(hours=24)
"""How long a suppressed firing alert keeps its resolve from going out."""
MAX_EXAMPLES: Final = 10
"""How many titles of suppressed alerts a window keeps for its summary."""
ENDS_INDEX: Final = "maintenance:ends"
"""The deadline index the monitor reads to find windows that ended."""

ENDED: Final = "maintenance:ended:"
"""Prefix of the marks of windows ended by hand (the value: when)."""
SUMMARY: Final = "maintenance:summary:"
"""Prefix of the claims on windows' summaries."""
_WINDOW = "maintenance:window:"
_COUNT = "maintenance:count:"
_TYPES = "maintenance:types:"
_EXAMPLE = "maintenance:example:"
_RESOLVE = "maintenance:resolve:"
_MISSED = "maintenance:missed:"
_MISSED_LINE: Final = 120
"""A missed run's line in a summary is cut to this many characters."""


class UnknownWindowError(LookupError):
    """No maintenance window has the id given."""


def iso(moment: datetime) -> str:
    """``moment`` in UTC, ISO 8601."""
    return moment.astimezone(UTC).isoformat()


def seconds(delta: timedelta) -> float:
    """A store TTL for ``delta``: its seconds, at least one."""
    return max(1.0, delta.total_seconds())


@attrs.frozen(kw_only=True)
class Window:
    """A maintenance window: ad-hoc, or one occurrence of a recurring window."""

    id: str
    kind: str
    started_at: datetime
    ends_at: datetime
    """When it ends (or ended) on its own."""
    reason: str = ""
    match: AlertMatcher = attrs.field(factory=AlertMatcher)
    summary: bool = True
    """Whether its end delivers a summary of what it suppressed."""
    name: str | None = None
    """The recurring window's name (None for an ad-hoc window)."""
    ended_at: datetime | None = None
    """When ``chaperone maintenance end`` ended it, if it did."""

    @property
    def end(self) -> datetime:
        """When it ends: its planned end, or earlier when it was ended by hand."""
        if self.ended_at is not None and self.ended_at < self.ends_at:
            return self.ended_at
        return self.ends_at

    def is_active(self, now: datetime) -> bool:
        """Whether the window is on at ``now``."""
        return self.started_at <= now < self.end

    def to_json(self) -> str:
        """The stored form (without ``ended_at``, which lives in a key of its own). The
        matcher keeps its fields' order, which its description shows.
        """
        return json.dumps(
            {
                "id": self.id,
                "kind": self.kind,
                "name": self.name,
                "started_at": iso(self.started_at),
                "ends_at": iso(self.ends_at),
                "reason": self.reason,
                "match": self.match.to_dict(),
                "summary": self.summary,
            }
        )

    @classmethod
    def from_json(cls, text: str, ended_at: str | None = None) -> Window:
        """Read :meth:`to_json`'s output, with the ended-early time if there is one."""
        data: dict[str, Any] = json.loads(text)
        return cls(
            id=data["id"],
            kind=data.get("kind", ADHOC),
            name=data.get("name"),
            started_at=datetime.fromisoformat(data["started_at"]),
            ends_at=datetime.fromisoformat(data["ends_at"]),
            reason=data.get("reason", ""),
            match=parse_match(data.get("match") or {}),
            summary=bool(data.get("summary", True)),
            ended_at=None if ended_at is None else datetime.fromisoformat(ended_at),
        )

    @classmethod
    def of_occurrence(cls, occurrence: Occurrence, ended_at: datetime | None = None) -> Window:
        """The window record of one occurrence of a recurring window."""
        recurring: RecurringWindow = occurrence.window
        return cls(
            id=occurrence.id,
            kind=RECURRING,
            name=recurring.name,
            started_at=occurrence.start,
            ends_at=occurrence.end,
            reason=recurring.reason,
            match=recurring.match,
            summary=recurring.summary,
            ended_at=ended_at,
        )


@attrs.frozen(kw_only=True)
class Suppressed:
    """What a window suppressed: the count, per alert type, the first few titles, and the
    first few missed runs (one line per job).
    """

    total: int = 0
    by_type: dict[str, int] = attrs.field(factory=dict)
    examples: tuple[str, ...] = ()
    missed: tuple[str, ...] = ()


# -- store access ------------------------------------------------------------------------


def ttl_of(window: Window, now: datetime) -> float:
    """How long, from ``now``, what concerns ``window`` stays in the store."""
    return seconds(window.ends_at - now + KEEP)


def _ended_times(store: Store, ids: Iterable[str]) -> dict[str, str]:
    keys = [f"{ENDED}{window_id}" for window_id in ids]
    if not keys:
        return {}
    return {key[len(ENDED) :]: value for key, value in store.get_many(keys).items()}


@lru_cache(maxsize=256)
def _parsed(text: str) -> Window:
    """A stored window record, read. A record never changes once written (the time it
    was ended early lives in a key of its own), and the maintenance filter reads every
    record for every alert, so each text is parsed once.
    """
    return Window.from_json(text)


def _records(store: Store) -> list[Window]:
    """The stored windows as written, without their ended-early times."""
    keys = store.keys(_WINDOW)
    if not keys:
        return []
    return [_parsed(text) for text in store.get_many(keys).values()]


def _with_ended(store: Store, windows: list[Window]) -> list[Window]:
    ended = _ended_times(store, (window.id for window in windows))
    return [
        window
        if window.id not in ended
        else attrs.evolve(window, ended_at=datetime.fromisoformat(ended[window.id]))
        for window in windows
    ]


def load_windows(store: Store) -> list[Window]:
    """Every window in the store (ad-hoc, and recurring occurrences that suppressed
    something), on or ended less than a week ago, oldest first.
    """
    windows = _with_ended(store, _records(store))
    return sorted(windows, key=lambda window: (window.started_at, window.id))


def stored_window(store: Store, window_id: str) -> Window | None:
    """The stored window ``window_id`` (with its ended-early time), or None."""
    text = store.get(f"{_WINDOW}{window_id}")
    if text is None:
        return None
    return Window.from_json(text, store.get(f"{ENDED}{window_id}"))


def new_window_id() -> str:
    """A short, readable id for an ad-hoc window: ``mw-`` and 8 hex digits."""
    return f"mw-{secrets.token_hex(4)}"


def start_window(
    store: Store,
    now: datetime,
    duration: timedelta,
    matcher: AlertMatcher | None = None,
    reason: str = "",
    summary: bool = True,
) -> Window:
    """Open an ad-hoc window from ``now`` for ``duration``; return it."""
    if duration <= timedelta(0):
        raise ValueError(f"a maintenance window must last more than 0s, got {duration}")
    for _attempt in range(10):
        window = Window(
            id=new_window_id(),
            kind=ADHOC,
            started_at=now,
            ends_at=now + duration,
            reason=reason.strip(),
            match=matcher or AlertMatcher(),
            summary=summary,
        )
        # The end is scheduled first: a window in the store is always found when it ends.
        store.schedule(ENDS_INDEX, window.id, window.ends_at.timestamp())
        if store.set_if_absent(f"{_WINDOW}{window.id}", window.to_json(), ttl_of(window, now)):
            return window
    raise RuntimeError("could not find a free maintenance window id")  # pragma: no cover


def _register(store: Store, window: Window, now: datetime) -> None:
    """Keep a recurring occurrence in the store, so its end finds what it suppressed."""
    key = f"{_WINDOW}{window.id}"
    if store.get(key) is not None:
        return
    store.schedule(ENDS_INDEX, window.id, window.ends_at.timestamp())
    store.set_if_absent(key, window.to_json(), ttl_of(window, now))


# -- which windows are on ----------------------------------------------------------------


def current_windows(settings: Settings, now: datetime) -> list[Occurrence]:
    """The occurrences of the configured recurring windows in force at ``now``."""
    found = []
    for recurring in settings.maintenance:
        occurrence = current_occurrence(recurring, now)
        if occurrence is not None:
            found.append(occurrence)
    return found


def occurrence_windows(store: Store, occurrences: list[Occurrence]) -> list[Window]:
    """The window records of ``occurrences``, with when each was ended by hand."""
    return _with_ended(store, [Window.of_occurrence(occurrence) for occurrence in occurrences])


def _on(
    settings: Settings, store: Store, now: datetime, alert: Alert | None = None
) -> list[Window]:
    """The windows on at ``now`` (that match ``alert``, when given): ad-hoc ones, oldest
    first, then the occurrences of recurring ones in config order. The ended-early marks
    are read only for the candidates.
    """
    adhoc = sorted(
        (window for window in _records(store) if window.kind == ADHOC and window.is_active(now)),
        key=lambda window: (window.started_at, window.id),
    )
    recurring = [Window.of_occurrence(occurrence) for occurrence in current_windows(settings, now)]
    candidates = [
        window for window in [*adhoc, *recurring] if alert is None or window.match.matches(alert)
    ]
    return [window for window in _with_ended(store, candidates) if window.is_active(now)]


def active_windows(settings: Settings, store: Store, now: datetime) -> list[Window]:
    """The windows on at ``now``: ad-hoc ones, oldest first, then the occurrences of
    recurring ones in config order.
    """
    return _on(settings, store, now)


def window_for(settings: Settings, store: Store, alert: Alert, now: datetime) -> Window | None:
    """The first window on at ``now`` that matches ``alert``, or None.

    Cheap when no window is on: one key scan of the few stored windows, and the
    recurring windows' times computed from the settings.
    """
    found = _on(settings, store, now, alert)
    return found[0] if found else None


# -- recording what a window suppressed --------------------------------------------------


def record_suppression(store: Store, window: Window, alert: Alert, now: datetime) -> int:
    """Count ``alert`` as suppressed by ``window`` (keeping its title among the first few,
    and remembering its incident so its resolve is suppressed too); return the count.
    """
    if window.kind == RECURRING:
        _register(store, window, now)
    ttl = ttl_of(window, now)
    count = store.incr(f"{_COUNT}{window.id}", 1, ttl)
    store.incr(f"{_TYPES}{window.id}|{alert.type}", 1, ttl)
    if count <= MAX_EXAMPLES:
        store.set(f"{_EXAMPLE}{window.id}|{count:03d}", alert.title, ttl)
    if alert.type == "job_missed":
        _record_missed(store, window, alert, ttl)
    store.set(f"{_RESOLVE}{alert.incident_key}", window.id, RESOLVE_MEMORY.total_seconds())
    return count


def _record_missed(store: Store, window: Window, alert: Alert, ttl: float) -> None:
    """Keep a suppressed missed run's line (its job, how many runs, since when) for the
    summary: the first :data:`MAX_EXAMPLES` jobs' lines.
    """
    if store.incr(f"{_MISSED}{window.id}", 1, ttl) > MAX_EXAMPLES:
        return
    fields = dict(alert.fields)
    count = fields.get("Missed Runs", "1")
    runs = "1 run" if count == "1" else f"{count} runs"
    line = f"{alert.key}: {runs} missed, the first expected {fields.get('Expected At', '?')}"
    store.set(f"{_MISSED}{window.id}|{alert.key}", line[:_MISSED_LINE], ttl)


def take_resolve(store: Store, alert: Alert) -> str | None:
    """If a firing alert of ``alert``'s incident was suppressed by a window, forget that
    and return the window's id (its resolve is to be suppressed too); else None.
    """
    key = f"{_RESOLVE}{alert.incident_key}"
    window_id = store.get(key)
    if window_id is None or not store.delete(key):
        return None
    return window_id


def forget_resolve(store: Store, alert: Alert) -> None:
    """A firing alert of this incident was let through: its resolve goes out again."""
    key = f"{_RESOLVE}{alert.incident_key}"
    if store.get(key) is not None:  # a read, so the usual case writes nothing
        store.delete(key)


def suppressed(store: Store, window_id: str) -> Suppressed:
    """What the window ``window_id`` suppressed so far."""
    total = store.get(f"{_COUNT}{window_id}")
    type_keys = store.keys(f"{_TYPES}{window_id}|")
    example_keys = store.keys(f"{_EXAMPLE}{window_id}|")
    missed_keys = store.keys(f"{_MISSED}{window_id}|")
    values = store.get_many([*type_keys, *example_keys, *missed_keys])
    prefix = len(f"{_TYPES}{window_id}|")
    return Suppressed(
        total=int(total or 0),
        by_type={key[prefix:]: int(values[key]) for key in type_keys if key in values},
        examples=tuple(values[key] for key in example_keys if key in values),
        missed=tuple(values[key] for key in sorted(missed_keys) if key in values),
    )
