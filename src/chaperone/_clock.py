"""The one clock every window, TTL and timestamp in Chaperone reads.

Production code uses :class:`SystemClock`; tests inject a :class:`ManualClock` and move
time forward by hand, so no test sleeps to see a window pass.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "ManualClock", "SystemClock", "as_utc", "utc_from_timestamp"]


def as_utc(value: datetime) -> datetime:
    """``value`` in UTC; a naive datetime is a ValueError (its zone is unknown)."""
    if value.tzinfo is None:
        raise ValueError(f"expected a timezone-aware datetime, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def utc_from_timestamp(timestamp: float) -> datetime:
    """The UTC datetime of Unix seconds ``timestamp``."""
    return datetime.fromtimestamp(timestamp, UTC)


@runtime_checkable
class Clock(Protocol):
    """What Chaperone asks of a clock."""

    def now(self) -> datetime:
        """Return the current time, timezone-aware UTC."""
        ...

    def timestamp(self) -> float:
        """Return the current time as Unix seconds."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> datetime:
        """Return the current UTC time."""
        return datetime.now(UTC)

    def timestamp(self) -> float:
        """Return the current Unix time in seconds."""
        return time.time()

    async def sleep(self, seconds: float) -> None:
        """Sleep for real."""
        await asyncio.sleep(max(0.0, seconds))


class ManualClock:
    """A clock that moves only when told to; ``sleep`` advances it instantly."""

    def __init__(self, start: datetime | None = None) -> None:
        start = start or datetime(2024, 1, 15, 10, 0, tzinfo=UTC)
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start time")
        self._now = start.astimezone(UTC)
        self.slept: list[float] = []

    def now(self) -> datetime:
        """Return the clock's current time."""
        return self._now

    def timestamp(self) -> float:
        """Return the clock's current time as Unix seconds."""
        return self._now.timestamp()

    def advance(self, delta: timedelta | float) -> None:
        """Move the clock forward by ``delta`` (a timedelta or seconds)."""
        seconds = delta.total_seconds() if isinstance(delta, timedelta) else float(delta)
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        self._now += timedelta(seconds=seconds)

    async def sleep(self, seconds: float) -> None:
        """Record the wait and advance the clock by it, without waiting."""
        self.slept.append(seconds)
        self.advance(max(0.0, seconds))
