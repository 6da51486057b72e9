"""What happened to a job, a breaker or a metric: the events the pipeline turns into alerts.

Events are frozen attrs classes built with keyword arguments. Durations are
``timedelta``; instants are timezone-aware UTC ``datetime``. Each firing event has a
recovery event that resolves the incident it opened.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

import attrs

from chaperone import _sanitize
from chaperone._alerts import Alert
from chaperone._clock import as_utc

__all__ = [
    "AlertsGrouped",
    "ChaperoneDegraded",
    "ChaperoneRecovered",
    "CircuitBreakerClosed",
    "CircuitBreakerOpened",
    "Event",
    "IncidentRef",
    "JobAbandoned",
    "JobCompleted",
    "JobFailed",
    "JobMissed",
    "JobRecovered",
    "JobStuck",
    "JobTimeout",
    "MaintenanceEnded",
    "ResourceRecovered",
    "ResourceViolationDetected",
    "RunsOverlapped",
    "ScheduleRecovered",
    "ThresholdCleared",
    "ThresholdExceeded",
    "ThresholdMetric",
    "ViolationType",
]


def _optional_utc(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


def _non_negative(
    _instance: object, attribute: attrs.Attribute[timedelta], value: timedelta
) -> None:
    if value < timedelta(0):
        raise ValueError(f"{attribute.name} must not be negative, got {value}")


def _optional_clean_text(value: str | None) -> str | None:
    return None if value is None else _sanitize.clean_text(value)


def _incidents(value: Iterable[IncidentRef]) -> tuple[IncidentRef, ...]:
    return tuple(value)


class ViolationType(enum.StrEnum):
    """Which resource limit a job went over."""

    MEMORY = "memory"
    CPU = "cpu"
    TIME = "time"
    DISK = "disk"

    @property
    def unit(self) -> str:
        """The unit the limit and the measured value are given in."""
        return _VIOLATION_UNITS[self]


_VIOLATION_UNITS = {
    ViolationType.MEMORY: "MB",
    ViolationType.CPU: "%",
    ViolationType.TIME: "s",
    ViolationType.DISK: "MB free",
}


class ThresholdMetric(enum.StrEnum):
    """The aggregate measures the seed's thresholds watch."""

    ERROR_RATE = "error_rate"
    RESPONSE_TIME = "response_time"
    QUEUE_LENGTH = "queue_length"


@attrs.frozen(kw_only=True)
class Event:
    """Base class of every event. ``occurred_at`` is filled from the clock when left out."""

    occurred_at: datetime | None = attrs.field(default=None, converter=_optional_utc)


@attrs.frozen(kw_only=True)
class IncidentRef:
    """Names an open incident by alert type and key, e.g. ``job_stuck`` / a supervision id."""

    type: str
    key: str


@attrs.frozen(kw_only=True)
class JobStuck(Event):
    """A running job sent no heartbeat for longer than it promised."""

    supervision_id: str
    job_class: str
    stuck_duration: timedelta = attrs.field(validator=_non_negative)
    last_heartbeat: datetime | None = attrs.field(default=None, converter=_optional_utc)


@attrs.frozen(kw_only=True)
class JobTimeout(Event):
    """A job ran past its timeout."""

    supervision_id: str
    job_class: str
    timeout: timedelta = attrs.field(validator=_non_negative)
    actual_duration: timedelta = attrs.field(validator=_non_negative)

    @property
    def exceeded_by(self) -> timedelta:
        """How far past its limit the job ran."""
        return self.actual_duration - self.timeout


@attrs.frozen(kw_only=True)
class CircuitBreakerOpened(Event):
    """A circuit breaker tripped: calls to ``service`` now fail fast."""

    service: str
    failure_count: int
    opened_at: datetime = attrs.field(converter=as_utc)
    retry_at: datetime | None = attrs.field(default=None, converter=_optional_utc)


@attrs.frozen(kw_only=True)
class ResourceViolationDetected(Event):
    """A job went over a resource limit. ``limit`` and ``actual`` are in the type's unit."""

    supervision_id: str
    job_class: str
    violation_type: ViolationType = attrs.field(converter=ViolationType)
    limit: float
    actual: float

    @property
    def exceeded_by(self) -> float:
        """How far past the limit the measured value is."""
        return self.actual - self.limit


@attrs.frozen(kw_only=True)
class ThresholdExceeded(Event):
    """An aggregate (error rate, response time, queue length) crossed its threshold.

    ``subject`` is what was measured: a job class, a queue name, or ``"*"`` for all.
    """

    metric: ThresholdMetric = attrs.field(converter=ThresholdMetric)
    subject: str
    value: float
    threshold: float
    window: timedelta | None = None


@attrs.frozen(kw_only=True)
class JobRecovered(Event):
    """A job that was stuck (or timed out) is healthy again: the incident resolves."""

    supervision_id: str
    job_class: str
    recovered_from: str = "job_stuck"
    reason: str = "heartbeats resumed"


@attrs.frozen(kw_only=True)
class JobCompleted(Event):
    """A supervised job finished. Resolves every incident listed in ``resolves``."""

    supervision_id: str
    job_class: str
    duration: timedelta = attrs.field(validator=_non_negative)
    failed: bool = False
    error: str | None = None
    resolves: tuple[IncidentRef, ...] = attrs.field(default=(), converter=_incidents)


@attrs.frozen(kw_only=True)
class JobFailed(Event):
    """A run of a job that asked for it (``alert_on_failure``) ended failed: its incident
    is the job's name, so failed runs in a row are one incident, resolved by the next
    successful run of that name (a :class:`JobCompleted` resolving ``job_failed``).

    ``error`` says how it failed: an exception's ``Type: message``, ``exit status N`` or
    ``killed by signal SIGx``.
    """

    supervision_id: str
    """The failed run's id."""
    job_class: str
    """The job's name: the incident's key."""
    error: str = attrs.field(converter=_sanitize.clean_text)
    """Valid text as it is built (not cut: the alert masks it before it cuts it), so the
    event crosses the store's queue unchanged."""
    duration: timedelta = attrs.field(validator=_non_negative)
    output: str | None = attrs.field(default=None, converter=_optional_clean_text)
    """The end of the run's output, where ``chaperone run`` captured it (masked on the
    job's record; valid text as ``error`` is, and cut by the alert to its last lines)."""


def _at_least_one(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name} must be 1 or more, got {value}")


@attrs.frozen(kw_only=True)
class JobMissed(Event):
    """A scheduled job did not start by its expected time plus its grace: its incident is
    the job's name, resolved when a run of it starts (a :class:`ScheduleRecovered`).
    """

    job_class: str
    """The job's name: the incident's key."""
    schedule: str
    """The schedule as a person reads it (``0 3 * * * (Europe/Berlin)``, ``every 15m``)."""
    expected_at: datetime = attrs.field(converter=as_utc)
    """When the first missed run was expected."""
    grace: timedelta = attrs.field(validator=_non_negative)
    last_run_at: datetime | None = attrs.field(default=None, converter=_optional_utc)
    """When the job last started, None when it never did while watched."""
    last_supervision_id: str | None = None
    """The id of that last run."""
    missed_count: int = attrs.field(default=1, validator=_at_least_one)
    """How many expected runs had passed their grace when it was found."""


@attrs.frozen(kw_only=True)
class RunsOverlapped(Event):
    """A run of a scheduled job whose schedule says ``overlap = "alert"`` started while
    the job's previous run still runs: its incident is the job's name, resolved when the
    overlapping run ends (a :class:`JobCompleted` resolving ``job_overlap``).
    """

    job_class: str
    supervision_id: str
    """The run that started."""
    running_id: str
    """The run still running."""
    running_since: datetime = attrs.field(converter=as_utc)


@attrs.frozen(kw_only=True)
class ScheduleRecovered(Event):
    """A missed-run incident ended: the job started again, or its schedule was paused or
    removed (``reason`` says which).
    """

    job_class: str
    reason: str = attrs.field(converter=_sanitize.clean_text)
    """Valid text as it is built, so the event crosses the store's queue unchanged."""
    supervision_id: str | None = None
    """The run that started, when one did."""


@attrs.frozen(kw_only=True)
class JobAbandoned(Event):
    """The process supervising a running job stopped vouching for it (``chaperone run``
    killed, the job's own process gone): the job may still run, unsupervised, and its
    record ends as abandoned instead of "running" forever.
    """

    supervision_id: str
    job_class: str
    supervisor: str
    """Which process stopped vouching, as ``pid N on HOST``."""
    last_seen: datetime = attrs.field(converter=as_utc)
    """When it last vouched for the job."""


@attrs.frozen(kw_only=True)
class ChaperoneDegraded(Event):
    """A part of Chaperone itself fails, so alerts may be late, lost or never raised.

    ``part`` names it: ``store``, ``detection``, ``outbox`` or ``channel:<name>``;
    ``reason`` says what went wrong (free of secrets).
    """

    part: str
    reason: str
    since: datetime = attrs.field(converter=as_utc)
    process: str = ""
    """Which process saw it, as ``chaperone run (pid N on HOST)``."""


@attrs.frozen(kw_only=True)
class ChaperoneRecovered(Event):
    """A part of Chaperone that failed works again: its degraded incident resolves."""

    part: str
    since: datetime = attrs.field(converter=as_utc)
    """When it started failing."""
    process: str = ""


@attrs.frozen(kw_only=True)
class CircuitBreakerClosed(Event):
    """A circuit breaker closed again after successful trial calls."""

    service: str
    closed_at: datetime = attrs.field(converter=as_utc)


@attrs.frozen(kw_only=True)
class ResourceRecovered(Event):
    """A job is back under a resource limit it had gone over."""

    supervision_id: str
    job_class: str
    violation_type: ViolationType = attrs.field(converter=ViolationType)
    actual: float


@attrs.frozen(kw_only=True)
class ThresholdCleared(Event):
    """An aggregate went back under its threshold."""

    metric: ThresholdMetric = attrs.field(converter=ThresholdMetric)
    subject: str
    value: float
    threshold: float


def _alerts(value: Iterable[Alert]) -> tuple[Alert, ...]:
    return tuple(value)


def _texts(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _counts(value: Mapping[str, int] | Iterable[tuple[str, int]]) -> tuple[tuple[str, int], ...]:
    pairs = value.items() if isinstance(value, Mapping) else value
    return tuple(sorted((str(name), int(count)) for name, count in pairs))


@attrs.frozen(kw_only=True)
class AlertsGrouped(Event):
    """A group's window closed (or its count was reached) with alerts held for a digest.

    ``alerts`` are the held alerts, oldest first; ``sent_individually`` says how many of
    the group's alerts in the same window went out one by one before the holding began.
    """

    group_key: str
    alerts: tuple[Alert, ...] = attrs.field(converter=_alerts)
    window: timedelta = attrs.field(validator=_non_negative)
    window_started: datetime = attrs.field(converter=as_utc)
    sent_individually: int = 0


@attrs.frozen(kw_only=True)
class MaintenanceEnded(Event):
    """A maintenance window ended; ``suppressed`` alerts matched it while it was on.

    ``by_type`` counts them per alert type; ``examples`` holds the titles of the first
    few, so the summary can say what was hidden; ``missed_runs`` a line for each of the
    first few scheduled jobs whose missed run it suppressed.
    """

    window_id: str
    started_at: datetime = attrs.field(converter=as_utc)
    ended_at: datetime = attrs.field(converter=as_utc)
    reason: str = ""
    matches: str = "everything"
    """What the window matched, as ``chaperone maintenance status`` shows it."""
    suppressed: int = 0
    by_type: tuple[tuple[str, int], ...] = attrs.field(default=(), converter=_counts)
    examples: tuple[str, ...] = attrs.field(default=(), converter=_texts)
    missed_runs: tuple[str, ...] = attrs.field(default=(), converter=_texts)
