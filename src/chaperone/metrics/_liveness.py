"""What Chaperone's own processes leave in the store about themselves, for health to judge:
that a monitor ticks, each monitor's beat, and each part of Chaperone that is failing.

``monitor:alive``
    Set by every tick of a monitor that vouches for the store (``chaperone monitor``),
    for :data:`ALIVE_TTL` or three of its intervals: while it is there, grouping holds
    alerts back for a monitor to flush (:func:`monitor_alive`).
``monitor:beat:<monitor id>``
    Written by every tick of every monitor (``chaperone monitor``, and the one inside
    ``chaperone run``): when it ticked, its interval, and the detection error of that
    tick if any. It expires after :func:`beat_ttl`, so a monitor that died leaves no beat
    behind for long.
``degraded:<part>``
    Written while a part of Chaperone fails (``store``, ``detection``, ``outbox``,
    ``channel:<name>``), refreshed while it lasts, deleted when the part works again; it
    expires after :data:`DEGRADED_TTL` when the process that wrote it is gone.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final

import attrs

if TYPE_CHECKING:
    from chaperone.store import Store

__all__ = [
    "ALIVE_KEY",
    "ALIVE_TTL",
    "BEAT_PREFIX",
    "DEGRADED_PREFIX",
    "DEGRADED_TTL",
    "DegradedRecord",
    "MonitorBeat",
    "beat_ttl",
    "degraded_key",
    "monitor_alive",
    "read_beats",
    "read_degraded",
]

ALIVE_KEY: Final = "monitor:alive"
"""Set by every tick, so job processes know a monitor will flush what they hold back."""
ALIVE_TTL: Final = 120.0
"""Seconds a tick vouches for: a monitor silent longer than this counts as gone."""
BEAT_PREFIX: Final = "monitor:beat:"
DEGRADED_PREFIX: Final = "degraded:"
DEGRADED_TTL: Final = 300.0
"""Seconds a ``degraded:<part>`` record outlives its last refresh."""
_BEAT_TTL_INTERVALS: Final = 10
_BEAT_TTL_MIN: Final = 120.0


def beat_ttl(interval: float) -> float:
    """How long a monitor's beat is kept: ten of its intervals, at least two minutes."""
    return max(_BEAT_TTL_MIN, _BEAT_TTL_INTERVALS * interval)


def monitor_alive(store: Store) -> bool:
    """Whether a monitor that keeps ticking vouched for ``store`` recently (within
    :data:`ALIVE_TTL` seconds, or three of its intervals when longer).

    Grouping holds alerts back only while this is true: with no monitor to flush them,
    held alerts would wait for one, so they go out one by one instead.
    """
    try:
        return store.get(ALIVE_KEY) is not None
    except Exception:
        return False


def degraded_key(part: str) -> str:
    """Where the record of a failing ``part`` is stored."""
    return DEGRADED_PREFIX + part


@attrs.frozen(kw_only=True)
class MonitorBeat:
    """One monitor's latest tick."""

    monitor: str
    """The monitor's id: host, pid and a random part."""
    host: str
    pid: int
    interval: float
    """Seconds between its ticks."""
    ticked_at: float
    """Unix time of its latest tick."""
    error: str | None = None
    """The latest tick's detection error (secret-free), None when it detected cleanly."""

    @property
    def key(self) -> str:
        """Where the beat is stored."""
        return BEAT_PREFIX + self.monitor

    def to_json(self) -> str:
        """The beat as stored."""
        return json.dumps(attrs.asdict(self), ensure_ascii=True)

    @classmethod
    def from_json(cls, text: str) -> MonitorBeat:
        """Read a stored beat; ValueError when it is not one."""
        data: dict[str, Any] = json.loads(text)
        try:
            return cls(
                monitor=str(data["monitor"]),
                host=str(data["host"]),
                pid=int(data["pid"]),
                interval=float(data["interval"]),
                ticked_at=float(data["ticked_at"]),
                error=None if data.get("error") is None else str(data["error"]),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a monitor beat: {exc}") from None

    def write(self, store: Store) -> None:
        """Store the beat for :func:`beat_ttl` of its interval."""
        store.set(self.key, self.to_json(), beat_ttl(self.interval))


@attrs.frozen(kw_only=True)
class DegradedRecord:
    """A part of Chaperone that is failing, as some process saw it."""

    part: str
    """``store``, ``detection``, ``outbox`` or ``channel:<name>``."""
    reason: str
    """What went wrong, secret-free."""
    since: float
    """Unix time the part started failing."""
    host: str
    pid: int

    @property
    def key(self) -> str:
        """Where the record is stored."""
        return degraded_key(self.part)

    def to_json(self) -> str:
        """The record as stored."""
        return json.dumps(attrs.asdict(self), ensure_ascii=True)

    @classmethod
    def from_json(cls, text: str) -> DegradedRecord:
        """Read a stored record; ValueError when it is not one."""
        data: dict[str, Any] = json.loads(text)
        try:
            return cls(
                part=str(data["part"]),
                reason=str(data["reason"]),
                since=float(data["since"]),
                host=str(data["host"]),
                pid=int(data["pid"]),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a degraded record: {exc}") from None

    def write(self, store: Store) -> None:
        """Store (or refresh) the record for :data:`DEGRADED_TTL` seconds."""
        store.set(self.key, self.to_json(), DEGRADED_TTL)


def _read_all(store: Store, prefix: str) -> list[str]:
    keys = store.keys(prefix)
    values = store.get_many(keys)
    return [values[key] for key in keys if key in values]


def read_beats(store: Store) -> list[MonitorBeat]:
    """Every monitor beat in the store, freshest first (unreadable ones left out)."""
    beats = []
    for text in _read_all(store, BEAT_PREFIX):
        try:
            beats.append(MonitorBeat.from_json(text))
        except ValueError:
            continue
    return sorted(beats, key=lambda beat: beat.ticked_at, reverse=True)


def read_degraded(store: Store) -> list[DegradedRecord]:
    """Every part recorded as failing, by part name (unreadable records left out)."""
    records = []
    for text in _read_all(store, DEGRADED_PREFIX):
        try:
            records.append(DegradedRecord.from_json(text))
        except ValueError:
            continue
    return sorted(records, key=lambda record: record.part)
