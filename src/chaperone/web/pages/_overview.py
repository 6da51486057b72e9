"""The overview: open incidents, jobs that need a look, schedules that are not up,
delivery health, and the maintenance windows on now.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final

import attrs

from chaperone._durations import format_duration
from chaperone.config import Settings
from chaperone.maintenance import active_windows, suppressed
from chaperone.metrics._counters import Counts
from chaperone.metrics._health import CheckResult, HealthReport
from chaperone.store import Store
from chaperone.web.pages._jobs import ATTENTION_STATES, JobRow, job_rows
from chaperone.web.pages._maintenance import WindowRow, window_row
from chaperone.web.pages._schedules import ScheduleSummary, schedule_summary
from chaperone.web.pages._shapes import IncidentView

__all__ = [
    "OVERVIEW_JOBS",
    "ChannelHealth",
    "DeliveryHealth",
    "Overview",
    "delivery_health",
    "overview",
]

OVERVIEW_JOBS: Final = 50
"""Jobs the overview lists at most (newest first); the job list has them all."""


@attrs.frozen
class ChannelHealth:
    """One channel's deliveries since the counters began."""

    channel: str
    sent: int
    failed: int

    @property
    def failure_rate(self) -> float:
        """Percent of its deliveries that failed (0 without deliveries)."""
        total = self.sent + self.failed
        return 100.0 * self.failed / total if total else 0.0


@attrs.frozen
class DeliveryHealth:
    """Whether alerts get out: every health check, and each channel's failure rate."""

    healthy: bool
    checks: tuple[CheckResult, ...]
    channels: tuple[ChannelHealth, ...]
    recent_failure_rate: float | None
    """Percent failed over the health window (None when the store could not be read)."""
    window: str
    """The health window, said for a person (``"1 hour"``)."""
    threshold: float


def _channel(channel: str, counts: Counts) -> ChannelHealth:
    return ChannelHealth(channel, counts.sent, counts.failed)


def delivery_health(report: HealthReport) -> DeliveryHealth:
    """The health report as the overview shows it."""
    stats = report.stats
    return DeliveryHealth(
        healthy=report.healthy,
        checks=report.checks,
        channels=()
        if stats is None
        else tuple(_channel(name, counts) for name, counts in stats.by_channel.items()),
        recent_failure_rate=None if stats is None else stats.failure_rate,
        window=format_duration(report.window),
        threshold=report.threshold,
    )


@attrs.frozen
class Overview:
    """Everything the overview shows."""

    incidents: tuple[IncidentView, ...]
    jobs: tuple[JobRow, ...]
    more_jobs: int
    """Jobs that need a look beyond those listed."""
    schedules: ScheduleSummary
    health: DeliveryHealth
    windows: tuple[WindowRow, ...]


def overview(
    store: Store,
    settings: Settings,
    now: datetime,
    *,
    incidents: Sequence[IncidentView],
    health: HealthReport,
) -> Overview:
    """The overview at ``now``: ``incidents`` (the open ones, newest first), the newest
    :data:`OVERVIEW_JOBS` jobs running, stuck, timed out, failed or abandoned, the
    schedules that are not up, ``health`` and the windows on now.
    """
    jobs = job_rows(store, now, states=ATTENTION_STATES)
    return Overview(
        incidents=tuple(incidents),
        jobs=tuple(jobs[:OVERVIEW_JOBS]),
        more_jobs=max(0, len(jobs) - OVERVIEW_JOBS),
        schedules=schedule_summary(settings, store, now),
        health=delivery_health(health),
        windows=tuple(
            window_row(window, now, suppressed(store, window.id).total)
            for window in active_windows(settings, store, now)
        ),
    )
