"""The built-in alerts for the built-in events: the seed's types, keys, titles and fields,
the recoveries that resolve them, and the alert's dict form.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta

import attrs
import pytest
from hypothesis import Phase, find, given, settings
from hypothesis import strategies as st

from chaperone import (
    Alert,
    AlertStatus,
    Chaperone,
    ChaperoneDegraded,
    ChaperoneRecovered,
    CircuitBreakerClosed,
    CircuitBreakerOpened,
    Event,
    IncidentRef,
    JobAbandoned,
    JobCompleted,
    JobFailed,
    JobMissed,
    JobRecovered,
    JobStuck,
    JobTimeout,
    ManualClock,
    Priority,
    ResourceRecovered,
    ResourceViolationDetected,
    RunsOverlapped,
    ScheduleRecovered,
    Severity,
    ThresholdCleared,
    ThresholdExceeded,
    ViolationType,
    _sanitize,
    format_duration,
)
from chaperone import _events as chaperone_events
from chaperone.config import ServeSettings
from chaperone.testing import strategies
from helpers.runtime import make_runtime

APP_URL = "https://app.example.test"
SID = "550e8400-e29b-41d4-a716-446655440000"
NOW = datetime(2024, 1, 15, 10, 30, tzinfo=UTC)
RECOVERIES = (
    JobRecovered,
    JobCompleted,
    CircuitBreakerClosed,
    ResourceRecovered,
    ThresholdCleared,
    ScheduleRecovered,
    ChaperoneRecovered,
)


@pytest.fixture(scope="module")
def with_url() -> Iterator[Chaperone]:
    """A runtime whose settings name the application's URL."""
    with make_runtime(clock=ManualClock(NOW), app_url=APP_URL) as runtime:
        yield runtime


@pytest.fixture(scope="module")
def without_url() -> Iterator[Chaperone]:
    """A runtime with no application URL."""
    with make_runtime(clock=ManualClock(NOW), app_url=None) as runtime:
        yield runtime


def build(runtime: Chaperone, event: Event) -> list[Alert]:
    """The alerts the ``chaperone_alerts`` hook builds for ``event``."""
    alerts = runtime.plugins.hook.chaperone_alerts(event=event, runtime=runtime.runtime)
    assert alerts is not None
    return list(alerts)


def utc_text(moment: datetime) -> str:
    """The seed's timestamp, in UTC: ``2024-01-15 10:30:00 UTC``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") + " UTC"


def field_names(alert: Alert) -> list[str]:
    return [name for name, _ in alert.fields]


def job_url(supervision_id: str) -> str:
    return f"{APP_URL}/chaperone/jobs/{supervision_id}"


def safe_fields(fields: dict[str, str]) -> dict[str, str]:
    """``fields`` as an alert holds them: made safe and capped."""
    return dict(_sanitize.fields(fields))


line = _sanitize.line
"""A one-line text as an alert holds it (the events drawn hold control characters)."""
ident = _sanitize.identity
"""A key as an alert holds it."""


def recoveries_for(event: Event) -> list[Event]:
    """The recovery events that end the incident ``event`` opened."""
    at = event.occurred_at
    if isinstance(event, JobStuck | JobTimeout):
        alert_type = "job_stuck" if isinstance(event, JobStuck) else "job_timeout"
        return [
            JobRecovered(
                supervision_id=event.supervision_id,
                job_class=event.job_class,
                recovered_from=alert_type,
                occurred_at=at,
            ),
            JobCompleted(
                supervision_id=event.supervision_id,
                job_class=event.job_class,
                duration=timedelta(minutes=5),
                resolves=[IncidentRef(type=alert_type, key=event.supervision_id)],
                occurred_at=at,
            ),
        ]
    if isinstance(event, CircuitBreakerOpened):
        return [CircuitBreakerClosed(service=event.service, closed_at=NOW, occurred_at=at)]
    if isinstance(event, ResourceViolationDetected):
        return [
            ResourceRecovered(
                supervision_id=event.supervision_id,
                job_class=event.job_class,
                violation_type=event.violation_type,
                actual=event.limit,
                occurred_at=at,
            )
        ]
    if isinstance(event, ThresholdExceeded):
        return [
            ThresholdCleared(
                metric=event.metric,
                subject=event.subject,
                value=event.threshold,
                threshold=event.threshold,
                occurred_at=at,
            )
        ]
    if isinstance(event, JobAbandoned):  # its process came back, and the job ended
        return [
            JobCompleted(
                supervision_id=event.supervision_id,
                job_class=event.job_class,
                duration=timedelta(minutes=5),
                resolves=[IncidentRef(type="job_abandoned", key=event.supervision_id)],
                occurred_at=at,
            )
        ]
    if isinstance(event, JobFailed):  # the next run of that name succeeded
        return [
            JobCompleted(
                supervision_id="next-run",
                job_class=event.job_class,
                duration=timedelta(minutes=5),
                resolves=[IncidentRef(type="job_failed", key=event.job_class)],
                occurred_at=at,
            )
        ]
    if isinstance(event, RunsOverlapped):  # the overlapping run ended
        return [
            JobCompleted(
                supervision_id=event.supervision_id,
                job_class=event.job_class,
                duration=timedelta(minutes=5),
                resolves=[IncidentRef(type="job_overlap", key=event.job_class)],
                occurred_at=at,
            )
        ]
    if isinstance(event, JobMissed):  # the next run started
        return [
            ScheduleRecovered(job_class=event.job_class, reason="a run started", occurred_at=at)
        ]
    if isinstance(event, ChaperoneDegraded):
        return [ChaperoneRecovered(part=event.part, since=event.since, occurred_at=at)]
    raise AssertionError(f"no recovery known for {event!r}")


FIRST_FOUND = settings(phases=[Phase.generate], database=None, max_examples=2000)
"""For ``find``: the first example that fits is enough, shrinking it costs minutes."""

EVENT_CLASSES = [
    getattr(chaperone_events, name)
    for name in chaperone_events.__all__
    if isinstance(getattr(chaperone_events, name), type)
    and issubclass(getattr(chaperone_events, name), Event)
    and getattr(chaperone_events, name) is not Event
]


class TestStrategies:
    @pytest.mark.parametrize("event_class", EVENT_CLASSES, ids=lambda cls: cls.__name__)
    def test_events_draws_every_event_type(self, event_class: type[Event]) -> None:
        """``strategies.events()`` draws every built-in event type, with a UTC time."""
        event = find(
            strategies.events(), lambda drawn: isinstance(drawn, event_class), settings=FIRST_FOUND
        )
        assert event.occurred_at is not None
        assert event.occurred_at.tzinfo is UTC

    # find() prints what it found; for a 50,000-character alert hypothesis warns that
    # the repr is costly.
    @pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")
    @pytest.mark.parametrize(
        "condition",
        [
            lambda alert: alert.status is AlertStatus.RESOLVED,
            lambda alert: alert.severity is Severity.CRITICAL,
            lambda alert: alert.priority is Priority.LOW,
            lambda alert: alert.title.endswith(" characters cut]"),
            lambda alert: any(value.endswith(" characters cut]") for _, value in alert.fields),
            lambda alert: len(alert.fields) >= 20,
            lambda alert: any(ord(char) > 0xFFFF for char in alert.summary),
        ],
        ids=["resolved", "critical", "low", "long-title", "long-field", "many-fields", "astral"],
    )
    def test_alerts_reach_the_hard_cases(self, condition: Callable[[Alert], bool]) -> None:
        """``strategies.alerts()`` draws the cases channels get wrong: resolved, every
        severity and priority, text so long the alert cut it, many fields, characters
        beyond the BMP.
        """
        assert condition(find(strategies.alerts(), condition, settings=FIRST_FOUND))


class TestEveryEvent:
    @given(event=st.one_of(strategies.firing_events(), strategies.recovery_events()))
    def test_alerts_are_well_formed(self, with_url: Chaperone, event: Event) -> None:
        """Every built-in event builds alerts stamped with its time, a title that starts
        with the headline, and the status its kind implies.
        """
        alerts = build(with_url, event)
        firing = not isinstance(event, RECOVERIES)
        expected_count = len(event.resolves) if isinstance(event, JobCompleted) else 1
        assert len(alerts) == expected_count
        for alert in alerts:
            assert alert.occurred_at == event.occurred_at
            assert alert.title.startswith(f"{alert.headline}: ")
            assert alert.status is (AlertStatus.FIRING if firing else AlertStatus.RESOLVED)
            if not firing:
                assert alert.severity is Severity.INFO
            assert alert.priority is Priority.NORMAL

    @given(event=strategies.events())
    @settings(max_examples=50)
    def test_details_url_needs_app_url(
        self, with_url: Chaperone, without_url: Chaperone, event: Event
    ) -> None:
        """Alerts about a job link to ``<app_url>/chaperone/jobs/<sid>`` when the app URL
        is set and link nowhere when it is not; breaker and threshold alerts never link;
        a missed run links to the schedules page.
        """
        supervision_id = getattr(event, "supervision_id", None)
        expected = supervision_id and _sanitize.url(job_url(supervision_id))
        if isinstance(event, JobMissed):
            expected = f"{APP_URL}/chaperone/schedules"
        for alert in build(with_url, event):
            assert alert.details_url == expected
        for alert in build(without_url, event):
            assert alert.details_url is None

    def test_details_url_follows_the_web_apps_prefix(self) -> None:
        """With the pages moved under ``/ops/chaperone`` (``serve.prefix``), the link goes
        there: the web app answers it.
        """
        serve = ServeSettings(prefix="/ops/chaperone")
        with make_runtime(clock=ManualClock(NOW), app_url=APP_URL, serve=serve) as runtime:
            event = JobStuck(
                supervision_id=SID,
                job_class="reports.nightly",
                stuck_duration=timedelta(minutes=5),
                occurred_at=NOW,
            )
            alert = build(runtime, event)[0]
        assert alert.details_url == f"{APP_URL}/ops/chaperone/jobs/{SID}"

    @given(event=strategies.events())
    @settings(max_examples=30)
    def test_dispatch_builds_the_same_alerts(self, with_url: Chaperone, event: Event) -> None:
        """``dispatch`` turns an event into the alerts the hook builds, filling a missing
        ``occurred_at`` from the clock.
        """
        report = with_url.dispatch(attrs.evolve(event, occurred_at=None), is_test=True)
        expected = build(with_url, attrs.evolve(event, occurred_at=with_url.clock.now()))
        assert report.skipped is None
        assert [alert_report.alert for alert_report in report.alerts] == expected


class TestFiringAlerts:
    @given(event=strategies.job_stuck_events())
    def test_job_stuck(self, with_url: Chaperone, event: JobStuck) -> None:
        """Job stuck: keyed by supervision id, titled by job class, the seed's fields."""
        (alert,) = build(with_url, event)
        assert (alert.type, alert.key) == ("job_stuck", ident(event.supervision_id))
        assert alert.title == line(f"Job Stuck: {event.job_class}")
        assert alert.severity is Severity.ERROR
        assert dict(alert.fields) == safe_fields(
            {
                "Supervision ID": event.supervision_id,
                "Job Class": event.job_class,
                "Stuck Duration": format_duration(event.stuck_duration),
                "Last Heartbeat": utc_text(event.last_heartbeat)
                if event.last_heartbeat
                else "never",
            }
        )
        assert field_names(alert)[0] == "Supervision ID"
        assert (alert.job_class, alert.supervision_id) == (
            line(event.job_class),
            ident(event.supervision_id),
        )
        assert alert.details_url == _sanitize.url(job_url(event.supervision_id))

    @given(event=strategies.job_timeout_events())
    def test_job_timeout(self, with_url: Chaperone, event: JobTimeout) -> None:
        """Job timeout: keyed by supervision id, limit and durations in seconds."""
        (alert,) = build(with_url, event)
        assert (alert.type, alert.key) == ("job_timeout", ident(event.supervision_id))
        assert alert.title == line(f"Job Timeout: {event.job_class}")
        assert alert.severity is Severity.ERROR
        assert field_names(alert) == [
            "Supervision ID",
            "Job Class",
            "Timeout Limit",
            "Actual Duration",
            "Exceeded By",
        ]
        fields = dict(alert.fields)
        assert fields["Timeout Limit"] == f"{event.timeout.total_seconds():g}s"
        for name in ("Actual Duration", "Exceeded By"):
            assert fields[name].endswith("s")
        exceeded = float(fields["Exceeded By"].removesuffix("s"))
        # Rounded to a tenth of a second; 1e-9 absorbs the float error of the rounding.
        assert exceeded == pytest.approx(event.exceeded_by.total_seconds(), abs=0.05 + 1e-9)

    @given(event=strategies.circuit_breaker_opened_events())
    def test_circuit_breaker_opened(self, with_url: Chaperone, event: CircuitBreakerOpened) -> None:
        """Circuit breaker: keyed and titled by service, critical, no job link."""
        (alert,) = build(with_url, event)
        assert (alert.type, alert.key) == ("circuit_breaker", ident(event.service))
        assert alert.title == line(f"Circuit Breaker Opened: {event.service}")
        assert alert.severity is Severity.CRITICAL
        expected = {
            "Service": event.service,
            "Failure Count": str(event.failure_count),
            "Opened At": utc_text(event.opened_at),
            "Status": "Service Unavailable",
        }
        if event.retry_at is not None:
            expected["Next Trial At"] = utc_text(event.retry_at)
        assert dict(alert.fields) == safe_fields(expected)
        assert field_names(alert) == list(expected)
        assert alert.service == line(event.service)
        assert alert.details_url is None

    @given(event=strategies.resource_violation_events())
    def test_resource_violation(
        self, with_url: Chaperone, event: ResourceViolationDetected
    ) -> None:
        """Resource violation: keyed ``<sid>:<type>``, a warning, values in the type's unit."""
        (alert,) = build(with_url, event)
        violation = event.violation_type.value
        assert alert.type == "resource_violation"
        assert alert.key == ident(f"{event.supervision_id}:{violation}")
        assert alert.title == line(f"Resource Violation: {event.job_class}")
        assert alert.severity is Severity.WARNING
        floor = event.violation_type is ViolationType.DISK
        assert field_names(alert) == [
            "Supervision ID",
            "Job Class",
            "Violation Type",
            "Limit",
            "Actual",
            "Below Floor By" if floor else "Exceeded By",
        ]
        fields = dict(alert.fields)
        assert fields["Violation Type"] == violation
        assert fields["Limit"].startswith(f"{event.limit:g}")
        assert fields["Actual"].startswith(f"{event.actual:g}")
        assert alert.labels["violation_type"] == violation
        assert alert.details_url == _sanitize.url(job_url(event.supervision_id))

    @given(event=strategies.threshold_exceeded_events())
    def test_threshold_exceeded(self, with_url: Chaperone, event: ThresholdExceeded) -> None:
        """Threshold: keyed ``<metric>:<subject>``, titled by metric and subject."""
        (alert,) = build(with_url, event)
        assert (alert.type, alert.key) == (
            "threshold",
            ident(f"{event.metric.value}:{event.subject}"),
        )
        assert alert.title.endswith(f" Exceeded: {line(event.subject)}")
        assert alert.severity is Severity.WARNING
        names = ["Metric", "Subject", "Value", "Threshold"]
        assert field_names(alert) == names + (["Window"] if event.window is not None else [])
        assert alert.job_class == (None if event.subject == "*" else line(event.subject))


class TestSeedSamples:
    """The seed guide's own examples, word for word where it gives them."""

    def test_job_stuck_email_example(self, with_url: Chaperone) -> None:
        """The seed's example: 30 minutes stuck, last heartbeat at 10:30:00."""
        event = JobStuck(
            supervision_id=SID,
            job_class="App\\Jobs\\ProcessLargeDataset",
            stuck_duration=timedelta(milliseconds=1_800_000),
            last_heartbeat=datetime(2024, 1, 15, 10, 30, tzinfo=UTC),
            occurred_at=NOW,
        )
        (alert,) = build(with_url, event)
        assert alert.title == "Job Stuck: App\\Jobs\\ProcessLargeDataset"
        assert alert.summary == (
            "A supervised job has been detected as stuck and may require intervention."
        )
        assert alert.explanation == (
            "This job may be in an infinite loop, deadlocked, or otherwise unable to complete."
        )
        assert list(alert.fields) == [
            ("Supervision ID", SID),
            ("Job Class", "App\\Jobs\\ProcessLargeDataset"),
            ("Stuck Duration", "30 minutes"),
            ("Last Heartbeat", "2024-01-15 10:30:00 UTC"),
        ]
        assert alert.details_url == f"{APP_URL}/chaperone/jobs/{SID}"

    def test_job_timeout_example(self, with_url: Chaperone) -> None:
        """300 s limit, 350 s run: the seed's ``300s`` / ``350s`` / ``50s``."""
        event = JobTimeout(
            supervision_id=SID,
            job_class="App\\Jobs\\GenerateMonthlyReport",
            timeout=timedelta(seconds=300),
            actual_duration=timedelta(seconds=350),
            occurred_at=NOW,
        )
        (alert,) = build(with_url, event)
        assert alert.summary == "A supervised job has exceeded its timeout limit."
        assert dict(alert.fields) == {
            "Supervision ID": SID,
            "Job Class": "App\\Jobs\\GenerateMonthlyReport",
            "Timeout Limit": "300s",
            "Actual Duration": "350s",
            "Exceeded By": "50s",
        }

    def test_circuit_breaker_slack_example(self, with_url: Chaperone) -> None:
        """payment-gateway after 10 failures: the seed's Slack example fields."""
        event = CircuitBreakerOpened(
            service="payment-gateway",
            failure_count=10,
            opened_at=datetime(2024, 1, 15, 14, 23, 45, tzinfo=UTC),
            occurred_at=NOW,
        )
        (alert,) = build(with_url, event)
        assert alert.title == "Circuit Breaker Opened: payment-gateway"
        assert list(alert.fields) == [
            ("Service", "payment-gateway"),
            ("Failure Count", "10"),
            ("Opened At", "2024-01-15 14:23:45 UTC"),
            ("Status", "Service Unavailable"),
        ]

    def test_memory_violation(self, with_url: Chaperone) -> None:
        """512 MB limit, 768 MB used: values in MB, exceeded by 256 MB."""
        event = ResourceViolationDetected(
            supervision_id=SID,
            job_class="App\\Jobs\\ImportCustomerFeed",
            violation_type="memory",
            limit=512,
            actual=768,
            occurred_at=NOW,
        )
        (alert,) = build(with_url, event)
        assert alert.key == f"{SID}:memory"
        fields = dict(alert.fields)
        assert (fields["Limit"], fields["Actual"], fields["Exceeded By"]) == (
            "512 MB",
            "768 MB",
            "256 MB",
        )

    def test_disk_violation_is_below_a_floor(self, with_url: Chaperone) -> None:
        """Free disk space under its floor says how far below, in MB free."""
        event = ResourceViolationDetected(
            supervision_id=SID,
            job_class="App\\Jobs\\Export",
            violation_type="disk",
            limit=1024,
            actual=200,
            occurred_at=NOW,
        )
        (alert,) = build(with_url, event)
        assert alert.key == f"{SID}:disk"
        assert list(alert.fields)[3:] == [
            ("Limit", "1024 MB free"),
            ("Actual", "200 MB free"),
            ("Below Floor By", "824 MB free"),
        ]

    def test_cpu_violation_in_percent(self, with_url: Chaperone) -> None:
        """CPU limits read as percentages."""
        event = ResourceViolationDetected(
            supervision_id=SID,
            job_class="App\\Jobs\\Crunch",
            violation_type="cpu",
            limit=80,
            actual=97.5,
            occurred_at=NOW,
        )
        (alert,) = build(with_url, event)
        fields = dict(alert.fields)
        assert (fields["Limit"], fields["Actual"]) == ("80%", "97.5%")
        assert alert.key == f"{SID}:cpu"

    def test_threshold_titles(self, with_url: Chaperone) -> None:
        """Each metric has its own headline: Error Rate, Response Time, Queue Length."""
        titles = []
        for metric in ("error_rate", "response_time", "queue_length"):
            event = ThresholdExceeded(
                metric=metric, subject="*", value=20, threshold=10, occurred_at=NOW
            )
            (alert,) = build(with_url, event)
            titles.append(alert.title)
        assert titles == [
            "Error Rate Exceeded: *",
            "Response Time Exceeded: *",
            "Queue Length Exceeded: *",
        ]


class TestRecoveries:
    @given(event=strategies.firing_events())
    def test_recovery_resolves_the_same_incident(self, with_url: Chaperone, event: Event) -> None:
        """Each recovery of an incident builds a resolved alert with the type and key of
        the alert that opened it.
        """
        (opened,) = build(with_url, event)
        for recovery in recoveries_for(event):
            (resolved,) = build(with_url, recovery)
            assert resolved.status is AlertStatus.RESOLVED
            assert (resolved.type, resolved.key) == (opened.type, opened.key)
            assert resolved.incident_key == opened.incident_key
            assert resolved.severity is Severity.INFO

    @given(event=strategies.job_completed_events())
    def test_job_completed_resolves_each_listed_incident(
        self, with_url: Chaperone, event: JobCompleted
    ) -> None:
        """A completed job resolves every incident it lists, in order, and no other."""
        alerts = build(with_url, event)
        assert [(alert.type, alert.key) for alert in alerts] == [
            (ref.type, ident(ref.key)) for ref in event.resolves
        ]
        outcome = "Failed" if event.failed else "Completed"
        for alert in alerts:
            assert alert.is_resolved
            assert alert.title == line(f"Job {outcome}: {event.job_class}")
            assert ("Error" in dict(alert.fields)) == bool(event.error)

    def test_job_recovered_wording(self, with_url: Chaperone) -> None:
        """A recovered job says why in its summary and links to the job."""
        event = JobRecovered(supervision_id=SID, job_class="App\\Jobs\\X", occurred_at=NOW)
        (alert,) = build(with_url, event)
        assert alert.title == "Job Recovered: App\\Jobs\\X"
        assert alert.summary == "The job recovered: heartbeats resumed."
        assert (alert.type, alert.key) == ("job_stuck", SID)
        assert alert.details_url == job_url(SID)

    def test_breaker_closed_wording(self, with_url: Chaperone) -> None:
        """A closed breaker is titled by service and links nowhere."""
        event = CircuitBreakerClosed(service="payment-gateway", closed_at=NOW, occurred_at=NOW)
        (alert,) = build(with_url, event)
        assert alert.title == "Circuit Breaker Closed: payment-gateway"
        assert dict(alert.fields) == {
            "Service": "payment-gateway",
            "Closed At": "2024-01-15 10:30:00 UTC",
        }
        assert alert.details_url is None


def alerts_equal(left: Alert, right: Alert) -> bool:
    """Field-by-field equality (labels compared as plain dicts)."""
    return attrs.asdict(left, recurse=False) | {"labels": dict(left.labels)} == attrs.asdict(
        right, recurse=False
    ) | {"labels": dict(right.labels)}


class TestAlertDict:
    @given(alert=strategies.alerts())
    def test_round_trip(self, alert: Alert) -> None:
        """from_dict(to_dict(alert)) gives the same alert back."""
        again = Alert.from_dict(alert.to_dict())
        assert again == alert
        assert alerts_equal(again, alert)

    @given(alert=strategies.alerts())
    @settings(max_examples=50)
    def test_round_trip_through_json(self, alert: Alert) -> None:
        """The dict is JSON-ready: it survives json.dumps and json.loads unchanged."""
        data = alert.to_dict()
        assert json.loads(json.dumps(data)) == data
        assert Alert.from_dict(json.loads(json.dumps(data))) == alert

    @given(alert=strategies.alerts())
    @settings(max_examples=30)
    def test_dict_values_are_plain(self, alert: Alert) -> None:
        """The dict holds only plain values: text, None, lists and dicts of text."""
        data = alert.to_dict()
        assert data["occurred_at"].endswith("+00:00")
        assert data["status"] in {"firing", "resolved"}
        assert data["severity"] in {severity.value for severity in Severity}
        assert all(isinstance(pair, list) and len(pair) == 2 for pair in data["fields"])
        assert isinstance(data["labels"], dict)

    def test_from_dict_accepts_older_dicts_without_optional_keys(self) -> None:
        """A dict with only the required keys builds an alert with the defaults."""
        alert = Alert.from_dict(
            {
                "type": "job_stuck",
                "key": SID,
                "headline": "Job Stuck",
                "title": "Job Stuck: X",
                "summary": "stuck",
                "occurred_at": "2024-01-15T10:30:00+00:00",
            }
        )
        assert alert.status is AlertStatus.FIRING
        assert alert.fields == ()
        assert alert.occurred_at == NOW

    @given(events=st.lists(strategies.events(), min_size=1, max_size=3))
    @settings(max_examples=20)
    def test_built_alerts_round_trip(self, with_url: Chaperone, events: Sequence[Event]) -> None:
        """The alerts the built-in builders make survive the dict form too."""
        for event in events:
            for alert in build(with_url, event):
                assert Alert.from_dict(json.loads(json.dumps(alert.to_dict()))) == alert
