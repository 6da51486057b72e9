"""Built-in plugin: the seed's alerts for the built-in events.

Runs last among ``chaperone_alerts`` implementations, so a plugin can replace the alert
for any event by returning its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import singledispatch
from typing import TYPE_CHECKING, Any, Final

from chaperone._alerts import Alert, AlertStatus, Severity
from chaperone._digests import digest_alerts, maintenance_summary_alert
from chaperone._durations import format_duration, format_time
from chaperone._events import (
    AlertsGrouped,
    ChaperoneDegraded,
    ChaperoneRecovered,
    CircuitBreakerClosed,
    CircuitBreakerOpened,
    Event,
    JobAbandoned,
    JobCompleted,
    JobFailed,
    JobMissed,
    JobRecovered,
    JobStuck,
    JobTimeout,
    MaintenanceEnded,
    ResourceRecovered,
    ResourceViolationDetected,
    RunsOverlapped,
    ScheduleRecovered,
    ThresholdCleared,
    ThresholdExceeded,
    ThresholdMetric,
    ViolationType,
)
from chaperone._markers import hookimpl
from chaperone._secrets import MASKER

if TYPE_CHECKING:
    from chaperone._runtime import Runtime

__all__ = ["ALERT_TYPES", "chaperone_alerts"]

ORDER: Final = 40
"""Its place among the built-ins, whose hooks are called lowest first (:mod:`chaperone.builtin`)."""
REQUIRED: Final = (
    "every event becomes its alerts here; a plugin's chaperone_alerts answers "
    "before it, so to replace an alert, return your own"
)
"""Why this built-in cannot be disabled: naming it in ``plugins.disable`` is refused."""

JOB_STUCK = "job_stuck"
JOB_TIMEOUT = "job_timeout"
CIRCUIT_BREAKER = "circuit_breaker"
RESOURCE_VIOLATION = "resource_violation"
THRESHOLD = "threshold"
JOB_ABANDONED = "job_abandoned"
JOB_FAILED = "job_failed"
JOB_MISSED = "job_missed"
JOB_OVERLAP = "job_overlap"
CHAPERONE_DEGRADED = "chaperone_degraded"
ALERT_TYPES = (
    JOB_STUCK,
    JOB_TIMEOUT,
    CIRCUIT_BREAKER,
    RESOURCE_VIOLATION,
    THRESHOLD,
    JOB_ABANDONED,
    JOB_FAILED,
    JOB_MISSED,
    JOB_OVERLAP,
    CHAPERONE_DEGRADED,
)
"""The alert types built-in events raise."""

_HEADLINES = {
    JOB_STUCK: "Job Stuck",
    JOB_TIMEOUT: "Job Timeout",
    CIRCUIT_BREAKER: "Circuit Breaker Opened",
    RESOURCE_VIOLATION: "Resource Violation",
    THRESHOLD: "Threshold Exceeded",
    JOB_ABANDONED: "Job Abandoned",
    JOB_FAILED: "Job Failed",
    JOB_MISSED: "Job Missed",
    JOB_OVERLAP: "Runs Overlapped",
    CHAPERONE_DEGRADED: "Chaperone Degraded",
}
_DEGRADED_SUMMARIES = {
    "store": "Chaperone cannot use its store. This process works from memory: its alerts "
    "are delivered straight to the channels, but jobs in other processes go unwatched and "
    "what this process holds is lost if it stops before the store is back.",
    "detection": "Chaperone's detection failed: stuck and timed-out jobs may go unreported "
    "until it works again.",
    "outbox": "Chaperone's outbox refused alerts: they are delivered from memory, and lost "
    "if this process stops before they are.",
    "schedules": "Chaperone could not read the schedules of its changed configuration: it "
    "watches the schedules it read before until the file is fixed.",
}
_CHANNEL_SUMMARY = (
    "Alerts could not be delivered to the {name} channel: whoever reads it misses them "
    "until it works again."
)
_RESOURCE_CAUSES = {
    ViolationType.MEMORY: "The job may be loading too much data at once, or leaking memory.",
    ViolationType.CPU: "The job may be spinning in a busy loop or doing far more work than usual.",
    ViolationType.TIME: "The job may be processing more data than expected or waiting on a slow "
    "dependency.",
    ViolationType.DISK: "Temporary files, logs or exports may be filling the disk.",
}
ERROR_LIMIT: Final = 500
"""A failed run's error is cut to this many characters in its alert (after masking)."""
_METRIC_NAMES = {
    ThresholdMetric.ERROR_RATE: "Error Rate",
    ThresholdMetric.RESPONSE_TIME: "Response Time",
    ThresholdMetric.QUEUE_LENGTH: "Queue Length",
}


def _seconds(value: float) -> str:
    return f"{value:g}s"


def _details_url(runtime: Runtime, supervision_id: str) -> str | None:
    settings = runtime.settings
    app_url = settings.app_url
    # Where `chaperone serve` puts its pages: the link follows a prefix moved elsewhere.
    return f"{app_url}{settings.serve.prefix}/jobs/{supervision_id}" if app_url else None


def _measure(value: float, violation: ViolationType) -> str:
    return f"{value:g} {violation.unit}" if violation is not ViolationType.CPU else f"{value:g}%"


def _metric_value(metric: ThresholdMetric, value: float) -> str:
    if metric is ThresholdMetric.ERROR_RATE:
        return f"{value:g}%"
    if metric is ThresholdMetric.RESPONSE_TIME:
        return _seconds(value)
    return f"{value:g} jobs"


@singledispatch
def build_alerts(event: Event, runtime: Runtime) -> Sequence[Alert] | None:
    """Return the built-in alerts for ``event``; None for events it does not know."""
    return None


@build_alerts.register(JobStuck)
def _(event: JobStuck, runtime: Runtime) -> Sequence[Alert]:
    return [
        Alert(
            type=JOB_STUCK,
            key=event.supervision_id,
            headline=_HEADLINES[JOB_STUCK],
            title=f"Job Stuck: {event.job_class}",
            summary="A supervised job has been detected as stuck and may require intervention.",
            explanation="This job may be in an infinite loop, deadlocked, or otherwise unable "
            "to complete.",
            severity=Severity.ERROR,
            fields={
                "Supervision ID": event.supervision_id,
                "Job Class": event.job_class,
                "Stuck Duration": format_duration(event.stuck_duration),
                "Last Heartbeat": format_time(event.last_heartbeat),
            },
            job_class=event.job_class,
            supervision_id=event.supervision_id,
            details_url=_details_url(runtime, event.supervision_id),
            occurred_at=_when(event),
        )
    ]


@build_alerts.register(JobTimeout)
def _(event: JobTimeout, runtime: Runtime) -> Sequence[Alert]:
    return [
        Alert(
            type=JOB_TIMEOUT,
            key=event.supervision_id,
            headline=_HEADLINES[JOB_TIMEOUT],
            title=f"Job Timeout: {event.job_class}",
            summary="A supervised job has exceeded its timeout limit.",
            explanation="The job may be processing more data than expected, waiting on a slow "
            "dependency, or blocked on a lock.",
            severity=Severity.ERROR,
            fields={
                "Supervision ID": event.supervision_id,
                "Job Class": event.job_class,
                "Timeout Limit": _seconds(event.timeout.total_seconds()),
                "Actual Duration": _seconds(round(event.actual_duration.total_seconds(), 1)),
                "Exceeded By": _seconds(round(event.exceeded_by.total_seconds(), 1)),
            },
            job_class=event.job_class,
            supervision_id=event.supervision_id,
            details_url=_details_url(runtime, event.supervision_id),
            occurred_at=_when(event),
        )
    ]


@build_alerts.register(CircuitBreakerOpened)
def _(event: CircuitBreakerOpened, runtime: Runtime) -> Sequence[Alert]:
    fields = {
        "Service": event.service,
        "Failure Count": str(event.failure_count),
        "Opened At": format_time(event.opened_at),
        "Status": "Service Unavailable",
    }
    if event.retry_at is not None:
        fields["Next Trial At"] = format_time(event.retry_at)
    return [
        Alert(
            type=CIRCUIT_BREAKER,
            key=event.service,
            headline=_HEADLINES[CIRCUIT_BREAKER],
            title=f"Circuit Breaker Opened: {event.service}",
            summary=f"The circuit breaker for {event.service} opened after "
            f"{event.failure_count} failures; calls to it now fail fast.",
            explanation="The service may be down, overloaded or rejecting requests. Calls "
            "resume with trial requests once the reset timeout has passed.",
            severity=Severity.CRITICAL,
            fields=fields,
            service=event.service,
            occurred_at=_when(event),
        )
    ]


@build_alerts.register(ResourceViolationDetected)
def _(event: ResourceViolationDetected, runtime: Runtime) -> Sequence[Alert]:
    violation = event.violation_type
    return [
        Alert(
            type=RESOURCE_VIOLATION,
            key=f"{event.supervision_id}:{violation.value}",
            headline=_HEADLINES[RESOURCE_VIOLATION],
            title=f"Resource Violation: {event.job_class}",
            summary=f"A supervised job exceeded its {violation.value} limit.",
            explanation=_RESOURCE_CAUSES[violation],
            severity=Severity.WARNING,
            fields={
                "Supervision ID": event.supervision_id,
                "Job Class": event.job_class,
                "Violation Type": violation.value,
                "Limit": _measure(event.limit, violation),
                "Actual": _measure(event.actual, violation),
                **(
                    {"Below Floor By": _measure(round(-event.exceeded_by, 2), violation)}
                    if violation is ViolationType.DISK
                    else {"Exceeded By": _measure(round(event.exceeded_by, 2), violation)}
                ),
            },
            job_class=event.job_class,
            supervision_id=event.supervision_id,
            labels={"violation_type": violation.value},
            details_url=_details_url(runtime, event.supervision_id),
            occurred_at=_when(event),
        )
    ]


@build_alerts.register(ThresholdExceeded)
def _(event: ThresholdExceeded, runtime: Runtime) -> Sequence[Alert]:
    name = _METRIC_NAMES[event.metric]
    fields = {
        "Metric": name,
        "Subject": event.subject,
        "Value": _metric_value(event.metric, event.value),
        "Threshold": _metric_value(event.metric, event.threshold),
    }
    if event.window is not None:
        fields["Window"] = format_duration(event.window)
    return [
        Alert(
            type=THRESHOLD,
            key=f"{event.metric.value}:{event.subject}",
            headline=f"{name} Exceeded",
            title=f"{name} Exceeded: {event.subject}",
            summary=f"{name} is {_metric_value(event.metric, event.value)}, over the "
            f"threshold of {_metric_value(event.metric, event.threshold)}.",
            severity=Severity.WARNING,
            fields=fields,
            job_class=None if event.subject == "*" else event.subject,
            labels={"metric": event.metric.value},
            occurred_at=_when(event),
        )
    ]


@build_alerts.register(JobRecovered)
def _(event: JobRecovered, runtime: Runtime) -> Sequence[Alert]:
    return [
        _resolved(
            alert_type=event.recovered_from,
            key=event.supervision_id,
            headline="Job Recovered",
            subject=event.job_class,
            summary=f"The job recovered: {event.reason}.",
            fields={"Supervision ID": event.supervision_id, "Job Class": event.job_class},
            occurred_at=_when(event),
            job_class=event.job_class,
            supervision_id=event.supervision_id,
            details_url=_details_url(runtime, event.supervision_id),
        )
    ]


@build_alerts.register(JobCompleted)
def _(event: JobCompleted, runtime: Runtime) -> Sequence[Alert]:
    outcome = "failed" if event.failed else "completed"
    return [
        _resolved(
            alert_type=incident.type,
            key=incident.key,
            headline=f"Job {outcome.capitalize()}",
            subject=event.job_class,
            summary=f"The job {outcome} after {format_duration(event.duration)}.",
            fields={
                "Supervision ID": event.supervision_id,
                "Job Class": event.job_class,
                "Duration": format_duration(event.duration),
                **({"Error": event.error} if event.error else {}),
            },
            occurred_at=_when(event),
            job_class=event.job_class,
            supervision_id=event.supervision_id,
            details_url=_details_url(runtime, event.supervision_id),
        )
        for incident in event.resolves
    ]


@build_alerts.register(JobFailed)
def _(event: JobFailed, runtime: Runtime) -> Sequence[Alert]:
    # Masked before it is cut, so no secret is cut in two and missed.
    error = MASKER.mask(event.error)[:ERROR_LIMIT]
    return [
        Alert(
            type=JOB_FAILED,
            key=event.job_class,
            headline=_HEADLINES[JOB_FAILED],
            title=f"Job Failed: {event.job_class}",
            summary=f"A run of the job failed after {format_duration(event.duration)}.",
            explanation="Its error says why. Later failed runs belong to this alert; the "
            "next successful run resolves it.",
            severity=Severity.ERROR,
            fields={
                "Job Class": event.job_class,
                "Supervision ID": event.supervision_id,
                "Error": error,
                "Duration": format_duration(event.duration),
            },
            job_class=event.job_class,
            supervision_id=event.supervision_id,
            details_url=_details_url(runtime, event.supervision_id),
            occurred_at=_when(event),
        )
    ]


def _schedule_url(runtime: Runtime) -> str | None:
    settings = runtime.settings
    return f"{settings.app_url}{settings.serve.prefix}/schedules" if settings.app_url else None


def _runs(count: int) -> str:
    return "1 run" if count == 1 else f"{count:,} runs"


@build_alerts.register(JobMissed)
def _(event: JobMissed, runtime: Runtime) -> Sequence[Alert]:
    fields = {
        "Job Class": event.job_class,
        "Schedule": event.schedule,
        "Expected At": format_time(event.expected_at),
        "Last Run": format_time(event.last_run_at),
        "Missed Runs": f"{event.missed_count:,}",
        "Grace": format_duration(event.grace),
    }
    if event.last_supervision_id is not None:
        fields["Last Supervision ID"] = event.last_supervision_id
    return [
        Alert(
            type=JOB_MISSED,
            key=event.job_class,
            headline=_HEADLINES[JOB_MISSED],
            title=f"Job Missed: {event.job_class}",
            summary=f"A scheduled run did not start: {_runs(event.missed_count)} missed, the "
            f"first expected at {format_time(event.expected_at)}.",
            explanation="Its scheduler (cron, Celery beat, a timer) may have stopped, its host "
            "may be down, or its entry was removed. The next run that starts resolves this "
            "alert; `chaperone schedules pause` silences it while the job is meant not to run.",
            severity=Severity.ERROR,
            fields=fields,
            job_class=event.job_class,
            supervision_id=event.last_supervision_id,
            details_url=_schedule_url(runtime),
            occurred_at=_when(event),
        )
    ]


@build_alerts.register(RunsOverlapped)
def _(event: RunsOverlapped, runtime: Runtime) -> Sequence[Alert]:
    return [
        Alert(
            type=JOB_OVERLAP,
            key=event.job_class,
            headline=_HEADLINES[JOB_OVERLAP],
            title=f"Runs Overlapped: {event.job_class}",
            summary="A scheduled run started while the previous run was still running.",
            explanation="The previous run took longer than the schedule's period, or hangs; "
            "two runs at once may do the work twice or fight over it. This alert resolves "
            "when the overlapping run ends.",
            severity=Severity.WARNING,
            fields={
                "Job Class": event.job_class,
                "Supervision ID": event.supervision_id,
                "Running Since": format_time(event.running_since),
                "Running Supervision ID": event.running_id,
            },
            job_class=event.job_class,
            supervision_id=event.supervision_id,
            details_url=_details_url(runtime, event.supervision_id),
            occurred_at=_when(event),
        )
    ]


@build_alerts.register(ScheduleRecovered)
def _(event: ScheduleRecovered, runtime: Runtime) -> Sequence[Alert]:
    fields = {"Job Class": event.job_class, "Reason": event.reason}
    if event.supervision_id is not None:
        fields["Supervision ID"] = event.supervision_id
    return [
        _resolved(
            alert_type=JOB_MISSED,
            key=event.job_class,
            headline="Schedule Recovered",
            subject=event.job_class,
            summary=f"The missed-run alert is over: {event.reason}.",
            fields=fields,
            occurred_at=_when(event),
            job_class=event.job_class,
            supervision_id=event.supervision_id,
            details_url=None
            if event.supervision_id is None
            else _details_url(runtime, event.supervision_id),
        )
    ]


@build_alerts.register(JobAbandoned)
def _(event: JobAbandoned, runtime: Runtime) -> Sequence[Alert]:
    return [
        Alert(
            type=JOB_ABANDONED,
            key=event.supervision_id,
            headline=_HEADLINES[JOB_ABANDONED],
            title=f"Job Abandoned: {event.job_class}",
            summary="The process supervising this job stopped reporting; the job may still "
            "be running, unsupervised.",
            explanation="Its supervisor (chaperone run, or the job's own process) was killed, "
            "crashed or lost its host. Check whether the job still runs and whether its "
            "work was done.",
            severity=Severity.WARNING,
            fields={
                "Supervision ID": event.supervision_id,
                "Job Class": event.job_class,
                "Supervisor": event.supervisor,
                "Last Seen": format_time(event.last_seen),
            },
            job_class=event.job_class,
            supervision_id=event.supervision_id,
            details_url=_details_url(runtime, event.supervision_id),
            occurred_at=_when(event),
        )
    ]


def _degraded_summary(part: str) -> str:
    channel = part.removeprefix("channel:")
    if channel != part:
        return _CHANNEL_SUMMARY.format(name=channel)
    return _DEGRADED_SUMMARIES.get(part, f"Chaperone's {part} is failing.")


@build_alerts.register(ChaperoneDegraded)
def _(event: ChaperoneDegraded, runtime: Runtime) -> Sequence[Alert]:
    fields = {"Part": event.part, "Reason": event.reason, "Since": format_time(event.since)}
    if event.process:
        fields["Process"] = event.process
    return [
        Alert(
            type=CHAPERONE_DEGRADED,
            key=event.part,
            headline=_HEADLINES[CHAPERONE_DEGRADED],
            title=f"Chaperone Degraded: {event.part}",
            summary=_degraded_summary(event.part),
            explanation="A part of the alerting system itself is failing; see the reason. "
            "`chaperone health` names every failing check.",
            severity=Severity.CRITICAL,
            fields=fields,
            service="chaperone",
            labels={"part": event.part},
            occurred_at=_when(event),
        )
    ]


@build_alerts.register(ChaperoneRecovered)
def _(event: ChaperoneRecovered, runtime: Runtime) -> Sequence[Alert]:
    fields = {"Part": event.part, "Failing Since": format_time(event.since)}
    if event.process:
        fields["Process"] = event.process
    return [
        _resolved(
            alert_type=CHAPERONE_DEGRADED,
            key=event.part,
            headline="Chaperone Recovered",
            subject=event.part,
            summary=f"Chaperone's {event.part} works again.",
            fields=fields,
            occurred_at=_when(event),
            service="chaperone",
            labels={"part": event.part},
        )
    ]


@build_alerts.register(CircuitBreakerClosed)
def _(event: CircuitBreakerClosed, runtime: Runtime) -> Sequence[Alert]:
    return [
        _resolved(
            alert_type=CIRCUIT_BREAKER,
            key=event.service,
            headline="Circuit Breaker Closed",
            subject=event.service,
            summary=f"Calls to {event.service} succeed again; the circuit breaker closed.",
            fields={"Service": event.service, "Closed At": format_time(event.closed_at)},
            occurred_at=_when(event),
            service=event.service,
        )
    ]


@build_alerts.register(ResourceRecovered)
def _(event: ResourceRecovered, runtime: Runtime) -> Sequence[Alert]:
    violation = event.violation_type
    return [
        _resolved(
            alert_type=RESOURCE_VIOLATION,
            key=f"{event.supervision_id}:{violation.value}",
            headline="Resource Back Within Limit",
            subject=event.job_class,
            summary=f"The job's {violation.value} is back within its limit.",
            fields={
                "Supervision ID": event.supervision_id,
                "Violation Type": violation.value,
                "Actual": _measure(event.actual, violation),
            },
            occurred_at=_when(event),
            job_class=event.job_class,
            supervision_id=event.supervision_id,
            details_url=_details_url(runtime, event.supervision_id),
        )
    ]


@build_alerts.register(ThresholdCleared)
def _(event: ThresholdCleared, runtime: Runtime) -> Sequence[Alert]:
    name = _METRIC_NAMES[event.metric]
    return [
        _resolved(
            alert_type=THRESHOLD,
            key=f"{event.metric.value}:{event.subject}",
            headline=f"{name} Back To Normal",
            subject=event.subject,
            summary=f"{name} is {_metric_value(event.metric, event.value)}, back under "
            f"{_metric_value(event.metric, event.threshold)}.",
            fields={"Metric": name, "Subject": event.subject},
            occurred_at=_when(event),
        )
    ]


@build_alerts.register(AlertsGrouped)
def _(event: AlertsGrouped, runtime: Runtime) -> Sequence[Alert]:
    return digest_alerts(event, _when(event), runtime.settings.grouping.digest_size)


@build_alerts.register(MaintenanceEnded)
def _(event: MaintenanceEnded, runtime: Runtime) -> Sequence[Alert]:
    return [maintenance_summary_alert(event, _when(event))]


def _when(event: Event) -> datetime:
    if event.occurred_at is None:
        raise ValueError("the pipeline fills occurred_at before building alerts")
    return event.occurred_at


def _resolved(
    *,
    alert_type: str,
    key: str,
    headline: str,
    subject: str,
    summary: str,
    fields: dict[str, str],
    occurred_at: datetime,
    **identity: Any,
) -> Alert:
    return Alert(
        type=alert_type,
        key=key,
        headline=headline,
        title=f"{headline}: {subject}",
        summary=summary,
        status=AlertStatus.RESOLVED,
        severity=Severity.INFO,
        fields=fields,
        occurred_at=occurred_at,
        **identity,
    )


@hookimpl(trylast=True)
def chaperone_alerts(event: Event, runtime: Runtime) -> Sequence[Alert] | None:
    """Build the seed's alert for a built-in event."""
    return build_alerts(event, runtime)
