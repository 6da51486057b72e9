"""Rendering alerts as PagerDuty events: every documented limit for any alert, the seed's
format for the built-in alert types, and resolutions that find their incident.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import attrs
import pytest
from chaperone_pagerduty import dedup_key, render_event
from chaperone_pagerduty._render import EVENT_LIMIT, SUMMARY_LIMIT, event_size
from chaperone_pagerduty._render import _fit_details as fit_details
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from chaperone import (
    Alert,
    AlertStatus,
    CircuitBreakerClosed,
    CircuitBreakerOpened,
    Event,
    IncidentRef,
    JobCompleted,
    JobRecovered,
    JobStuck,
    JobTimeout,
    ResourceRecovered,
    ResourceViolationDetected,
    Settings,
    ThresholdCleared,
    ThresholdExceeded,
    ThresholdMetric,
    ViolationType,
)
from chaperone.builtin.alert_builder import build_alerts
from chaperone.channels.text import multi_line
from chaperone.testing import strategies
from chaperone.testing.strategies import OVERSIZED_LENGTH

KEY = "pdRoutingKey4ChaperoneTests0042Z"
APP_URL = "https://app.example.com"
SID = "550e8400-e29b-41d4-a716-446655440000"
NOW = datetime(2024, 1, 15, 10, 30, tzinfo=UTC)
JOB = "App\\Jobs\\ProcessLargeDataset"
SEVERITIES = {"critical", "error", "warning", "info"}
PROPERTY = settings(
    deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@attrs.frozen
class _AppStandIn:
    """What the built-in alert builders read from the runtime: its settings."""

    settings: Settings


def alerts_for(event: Event, app_url: str | None = APP_URL) -> list[Alert]:
    """The built-in alerts for ``event``, as the pipeline builds them."""
    runtime = cast(Any, _AppStandIn(Settings(app_url=app_url)))
    return list(build_alerts(event, runtime) or [])


def size_as_sent(event: Mapping[str, Any]) -> int:
    """The body's size as httpx encodes it."""
    return len(json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def texts_in(value: Any) -> list[str]:
    """Every string inside ``value``."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [text for key, item in value.items() for text in (key, *texts_in(item))]
    if isinstance(value, Sequence):
        return [text for item in value for text in texts_in(item)]
    return []


def assert_within_limits(alert: Alert, event: dict[str, Any]) -> None:
    """Every limit of the Events API v2, and the shape of a trigger or a resolve."""
    assert event["routing_key"] == KEY
    assert event["dedup_key"]
    assert len(event["dedup_key"]) <= 255
    assert len(event["dedup_key"].encode("utf-8")) <= 255
    assert event_size(event) <= EVENT_LIMIT
    assert size_as_sent(event) <= EVENT_LIMIT <= 512 * 1024
    for text in texts_in(event):
        text.encode("utf-8")  # no lone surrogate: the body can be sent
    if alert.is_resolved:
        assert event == {
            "routing_key": KEY,
            "event_action": "resolve",
            "dedup_key": dedup_key(alert),
        }
        return
    assert event["event_action"] == "trigger"
    payload = event["payload"]
    assert payload["summary"].strip()
    assert len(payload["summary"]) <= SUMMARY_LIMIT
    assert "\n" not in payload["summary"]
    assert payload["severity"] in SEVERITIES
    assert payload["severity"] == alert.severity.value
    assert payload["source"] == "chaperone"
    assert payload["component"] == "queue-jobs"
    assert payload["class"] == alert.type
    assert datetime.fromisoformat(payload["timestamp"]) == alert.occurred_at
    assert isinstance(payload["custom_details"], dict)
    for link in event.get("links", []):
        assert set(link) == {"href", "text"}
        assert link["text"] in {"View Job Details", "Runbook"}
    assert event["client"] == "Chaperone"


def _oversized_alert(fields: int = 60, length: int = OVERSIZED_LENGTH) -> Alert:
    text = ("Ünïcødé ⚠ 🚨 " * length)[:length]
    return Alert(
        type="job_stuck",
        key=text,
        headline=text,
        title=text,
        summary=text,
        explanation=text,
        fields=[(f"{text[:300]} {index}", text) for index in range(fields)],
        job_class=text,
        supervision_id=text,
        labels={"team": text},
        details_url="https://example.com/" + "x" * 5000,
        runbook_url="https://example.com/runbook",
        occurred_at=NOW,
    )


def _alert(**changes: Any) -> Alert:
    values: dict[str, Any] = {
        "type": "job_stuck",
        "key": SID,
        "headline": "Job Stuck",
        "title": f"Job Stuck: {JOB}",
        "summary": "A supervised job has been detected as stuck.",
        "occurred_at": NOW,
    }
    values.update(changes)
    return Alert(**values)


class TestLimits:
    """Any alert renders within every limit PagerDuty documents."""

    def test_any_alert_renders_within_every_limit(self) -> None:
        """Any alert (oversized, non-ASCII, many fields) renders within the limits."""

        @PROPERTY
        @given(alert=strategies.alerts())
        @example(alert=_oversized_alert())
        @example(alert=_oversized_alert(fields=2000, length=2000))
        def check(alert: Alert) -> None:
            event = render_event(alert, KEY)
            assert_within_limits(alert, event)
            if not alert.is_resolved and "omitted" not in event["payload"]["custom_details"]:
                assert len(event["payload"]["custom_details"]) >= len(alert.fields)

        check()

    def test_oversized_alert_fits_with_every_field(self) -> None:
        """An alert given megabytes of text (which the core caps) renders below 512 KB
        with every field it kept, each whole.
        """
        alert = _oversized_alert()
        event = render_event(alert, KEY)
        details = event["payload"]["custom_details"]
        assert event_size(event) <= EVENT_LIMIT
        assert len(details) == 2 + len(alert.fields) + 1  # summary, explanation, fields, labels
        shown = list(details.values())[2 : 2 + len(alert.fields)]
        assert shown == [value for _, value in alert.fields]
        assert details["labels"] == dict(alert.labels)

    def test_thousands_of_details_are_left_out_from_the_end(self) -> None:
        """When even cut details do not fit, the first ones are kept and the rest counted
        (more than an alert holds: the core caps its fields, so the details are given
        directly).
        """
        entries = [(f"field {index:05}", "v" * 200) for index in range(10_000)]
        event = render_event(_alert(), KEY)
        fit_details(event, [("summary", "A supervised job has been stuck."), *entries])
        details = event["payload"]["custom_details"]
        assert event_size(event) <= EVENT_LIMIT
        names = list(details)
        assert names[:3] == ["summary", "field 00000", "field 00001"]
        kept = len(names) - 2
        assert 1000 < kept < 10_000
        assert details["omitted"] == f"{10_000 - kept} more details left out (too long)"
        assert names[-2] == f"field {kept - 1:05}"

    def test_details_that_fit_are_whole(self) -> None:
        """A long explanation that fits is sent whole, as the alert holds it."""
        alert = _alert(explanation="why " * 20_000)
        details = render_event(alert, KEY)["payload"]["custom_details"]
        assert details["explanation"] == alert.explanation
        assert details["explanation"].startswith("why " * 900)

    def test_long_title_is_within_the_summary_limit(self) -> None:
        """A title of 5,000 characters (cut by the core, with its marker) makes a summary
        within 1,024 characters that says how much was cut.
        """
        summary = render_event(_alert(title="Ü" * 5000), KEY)["payload"]["summary"]
        assert len(summary) <= SUMMARY_LIMIT
        assert summary.startswith("Ü" * 900)
        assert summary.endswith(" characters cut]")

    def test_summary_is_one_line(self) -> None:
        """Line breaks and runs of spaces in the title become single spaces."""
        summary = render_event(_alert(title="Job Stuck:\n  App\\Jobs\\X\r\n"), KEY)["payload"]
        assert summary["summary"] == "Job Stuck: App\\Jobs\\X"

    def test_blank_title_falls_back_to_the_headline(self) -> None:
        """A blank title gives way to the headline, then to the incident key."""
        assert render_event(_alert(title=" \n"), KEY)["payload"]["summary"] == "Job Stuck"
        blank = _alert(title="\t", headline=" ")
        assert render_event(blank, KEY)["payload"]["summary"] == f"job_stuck:{SID}"

    def test_lone_surrogates_are_replaced(self) -> None:
        """Text no encoder accepts is made sendable rather than failing the send."""
        event = render_event(_alert(title="bad \udc80 title", fields={"x\ud800": "y"}), KEY)
        assert event["payload"]["summary"] == "bad \ufffd title"
        assert "x\ufffd" in event["payload"]["custom_details"]
        assert size_as_sent(event) > 0

    def test_duplicate_field_names_are_all_kept(self) -> None:
        """Fields sharing a name (or named like a built-in detail) are all kept."""
        alert = _alert(fields=[("Host", "a"), ("Host", "b"), ("summary", "c")])
        details = render_event(alert, KEY)["payload"]["custom_details"]
        assert details["Host"] == "a"
        assert details["Host (2)"] == "b"
        assert details["summary (2)"] == "c"

    def test_absurdly_long_links_are_left_out(self) -> None:
        """A link too long to be a real URL is dropped rather than cut."""
        alert = _alert(details_url="https://x.test/" + "a" * 9000, runbook_url="https://x.test/rb")
        assert render_event(alert, KEY)["links"] == [
            {"href": "https://x.test/rb", "text": "Runbook"}
        ]


class TestDedupKey:
    """The dedup_key: one per incident, the same for its trigger and its resolve."""

    def test_is_the_incident_key(self) -> None:
        """A short incident key is the dedup_key as it is."""
        assert dedup_key(_alert()) == f"job_stuck:{SID}"

    def test_same_for_firing_and_resolved(self) -> None:
        """Any alert's resolution carries its trigger's dedup_key."""

        @settings(PROPERTY, max_examples=40)
        @given(alert=strategies.alerts(status=AlertStatus.FIRING))
        @example(alert=_oversized_alert())
        def check(alert: Alert) -> None:
            resolved = attrs.evolve(alert, status="resolved", title="Recovered", severity="info")
            trigger = render_event(alert, KEY)
            resolve = render_event(resolved, KEY)
            assert trigger["dedup_key"] == resolve["dedup_key"]

        check()

    def test_acknowledge_carries_the_trigger_dedup_key(self) -> None:
        """Any alert's acknowledgement is an ``acknowledge`` event with its trigger's
        dedup_key and nothing else: no payload, every limit kept.
        """

        @settings(PROPERTY, max_examples=40)
        @given(alert=strategies.alerts(status=AlertStatus.FIRING))
        @example(alert=_oversized_alert())
        def check(alert: Alert) -> None:
            acknowledged = attrs.evolve(alert, status=AlertStatus.ACKNOWLEDGED)
            trigger = render_event(alert, KEY)
            event = render_event(acknowledged, KEY)
            assert event == {
                "routing_key": KEY,
                "event_action": "acknowledge",
                "dedup_key": trigger["dedup_key"],
            }
            assert len(event["dedup_key"].encode("utf-8")) <= 255
            json.dumps(event).encode("utf-8")

        check()

    def test_any_hostile_acknowledgement_is_sendable(self) -> None:
        """An acknowledgement of any hostile alert is valid UTF-8 within the key limit."""

        @PROPERTY
        @given(alert=strategies.hostile_alerts(status=AlertStatus.ACKNOWLEDGED))
        def check(alert: Alert) -> None:
            event = render_event(alert, KEY)
            assert event["event_action"] == "acknowledge"
            assert event["dedup_key"] == dedup_key(alert)
            assert len(event["dedup_key"].encode("utf-8")) <= 255
            json.dumps(event, ensure_ascii=False).encode("utf-8")

        check()

    def test_distinct_incidents_get_distinct_keys(self) -> None:
        """Different incident keys never share a dedup_key, hashed or not."""

        @PROPERTY
        @given(
            types=st.tuples(strategies.alert_types(), strategies.alert_types()),
            keys=st.tuples(st.text(min_size=1), st.text(min_size=1)),
            prefix=st.sampled_from(["", "x" * 300, "é" * 200]),
        )
        def check(types: tuple[str, str], keys: tuple[str, str], prefix: str) -> None:
            first = _alert(type=types[0], key=prefix + keys[0])
            second = _alert(type=types[1], key=prefix + keys[1])
            if first.incident_key != second.incident_key:
                assert dedup_key(first) != dedup_key(second)
            else:
                assert dedup_key(first) == dedup_key(second)

        check()

    def test_long_key_is_hashed_stably(self) -> None:
        """A key over 255 bytes becomes the alert type and the SHA-256 of the whole."""
        alert = _alert(key="k" * 300)
        key = dedup_key(alert)
        assert key.startswith("job_stuck:sha256:")
        assert len(key) == len("job_stuck:sha256:") + 64
        assert key == dedup_key(_alert(key="k" * 300, title="another title"))

    def test_limit_counts_bytes(self) -> None:
        """A key of 255 characters but more bytes is hashed; one of 255 bytes is kept."""
        kept = "a" * (255 - len("job_stuck:"))
        assert dedup_key(_alert(key=kept)) == f"job_stuck:{kept}"
        assert "sha256" in dedup_key(_alert(key="é" * 200))


def _seed_events() -> list[tuple[Event, dict[str, Any]]]:
    """Each built-in firing event, with what its trigger must carry."""
    return [
        (
            JobStuck(
                supervision_id=SID,
                job_class=JOB,
                stuck_duration=timedelta(minutes=30),
                last_heartbeat=NOW - timedelta(minutes=30),
                occurred_at=NOW,
            ),
            {
                "dedup_key": f"job_stuck:{SID}",
                "summary": f"Job Stuck: {JOB}",
                "severity": "error",
                "group": JOB,
                "class": "job_stuck",
                "details": {
                    "Supervision ID": SID,
                    "Job Class": JOB,
                    "Stuck Duration": "30 minutes",
                    "Last Heartbeat": "2024-01-15 10:00:00 UTC",
                },
                "job_link": True,
            },
        ),
        (
            JobTimeout(
                supervision_id=SID,
                job_class="App\\Jobs\\GenerateMonthlyReport",
                timeout=timedelta(seconds=300),
                actual_duration=timedelta(seconds=350),
                occurred_at=NOW,
            ),
            {
                "dedup_key": f"job_timeout:{SID}",
                "summary": "Job Timeout: App\\Jobs\\GenerateMonthlyReport",
                "severity": "error",
                "group": "App\\Jobs\\GenerateMonthlyReport",
                "class": "job_timeout",
                "details": {
                    "Supervision ID": SID,
                    "Timeout Limit": "300s",
                    "Actual Duration": "350s",
                    "Exceeded By": "50s",
                },
                "job_link": True,
            },
        ),
        (
            CircuitBreakerOpened(
                service="payment-gateway",
                failure_count=10,
                opened_at=NOW,
                retry_at=NOW + timedelta(seconds=60),
                occurred_at=NOW,
            ),
            {
                "dedup_key": "circuit_breaker:payment-gateway",
                "summary": "Circuit Breaker Opened: payment-gateway",
                "severity": "critical",
                "group": "payment-gateway",
                "class": "circuit_breaker",
                "details": {
                    "Service": "payment-gateway",
                    "Failure Count": "10",
                    "Status": "Service Unavailable",
                },
                "job_link": False,
            },
        ),
        (
            ResourceViolationDetected(
                supervision_id=SID,
                job_class="App\\Jobs\\ImportCustomerFeed",
                violation_type=ViolationType.MEMORY,
                limit=512,
                actual=768,
                occurred_at=NOW,
            ),
            {
                "dedup_key": f"resource_violation:{SID}:memory",
                "summary": "Resource Violation: App\\Jobs\\ImportCustomerFeed",
                "severity": "warning",
                "group": "App\\Jobs\\ImportCustomerFeed",
                "class": "resource_violation",
                "details": {
                    "Violation Type": "memory",
                    "Limit": "512 MB",
                    "Actual": "768 MB",
                    "labels": {"violation_type": "memory"},
                },
                "job_link": True,
            },
        ),
        (
            ThresholdExceeded(
                metric=ThresholdMetric.ERROR_RATE,
                subject="App\\Jobs\\SendInvoice",
                value=12.5,
                threshold=5,
                occurred_at=NOW,
            ),
            {
                "dedup_key": "threshold:error_rate:App\\Jobs\\SendInvoice",
                "summary": "Error Rate Exceeded: App\\Jobs\\SendInvoice",
                "severity": "warning",
                "group": "App\\Jobs\\SendInvoice",
                "class": "threshold",
                "details": {"Metric": "Error Rate", "Value": "12.5%", "Threshold": "5%"},
                "job_link": False,
            },
        ),
    ]


class TestSeedFormat:
    """The built-in alerts render as the seed's PagerDuty integration does."""

    @pytest.mark.parametrize(
        ("event", "expected"),
        _seed_events(),
        ids=["job_stuck", "job_timeout", "circuit_breaker", "resource_violation", "threshold"],
    )
    def test_trigger(self, event: Event, expected: dict[str, Any]) -> None:
        """Summary, severity, source, component, group, class, details and the job link."""
        [alert] = alerts_for(event)
        trigger = render_event(alert, KEY)
        assert_within_limits(alert, trigger)
        payload = trigger["payload"]
        assert trigger["dedup_key"] == expected["dedup_key"]
        assert payload["summary"] == expected["summary"]
        assert payload["severity"] == expected["severity"]
        assert payload["source"] == "chaperone"
        assert payload["component"] == "queue-jobs"
        assert payload["group"] == expected["group"]
        assert payload["class"] == expected["class"]
        assert payload["timestamp"] == "2024-01-15T10:30:00+00:00"
        details = payload["custom_details"]
        assert details["summary"] == alert.summary
        for name, value in expected["details"].items():
            assert details[name] == value
        if alert.explanation:
            assert details["explanation"] == alert.explanation
        if expected["job_link"]:
            href = f"{APP_URL}/chaperone/jobs/{SID}"
            assert trigger["links"] == [{"href": href, "text": "View Job Details"}]
        else:
            assert "links" not in trigger

    def test_no_job_link_without_an_app_url(self) -> None:
        """Without CHAPERONE_APP_URL there is no job page to link to."""
        [alert] = alerts_for(_seed_events()[0][0], app_url=None)
        assert "links" not in render_event(alert, KEY)

    def test_runbook_link(self) -> None:
        """An alert with a runbook URL links to it after the job details."""
        alert = _alert(details_url="https://app.test/job", runbook_url="https://wiki.test/rb")
        assert render_event(alert, KEY)["links"] == [
            {"href": "https://app.test/job", "text": "View Job Details"},
            {"href": "https://wiki.test/rb", "text": "Runbook"},
        ]


def _resolutions() -> list[tuple[Event, Event]]:
    """Each built-in firing event with an event that resolves its incident."""
    firing = [event for event, _ in _seed_events()]
    return list(
        zip(
            firing,
            [
                JobRecovered(supervision_id=SID, job_class=JOB, occurred_at=NOW),
                JobCompleted(
                    supervision_id=SID,
                    job_class="App\\Jobs\\GenerateMonthlyReport",
                    duration=timedelta(seconds=400),
                    resolves=[IncidentRef(type="job_timeout", key=SID)],
                    occurred_at=NOW,
                ),
                CircuitBreakerClosed(service="payment-gateway", closed_at=NOW, occurred_at=NOW),
                ResourceRecovered(
                    supervision_id=SID,
                    job_class="App\\Jobs\\ImportCustomerFeed",
                    violation_type=ViolationType.MEMORY,
                    actual=300,
                    occurred_at=NOW,
                ),
                ThresholdCleared(
                    metric=ThresholdMetric.ERROR_RATE,
                    subject="App\\Jobs\\SendInvoice",
                    value=1,
                    threshold=5,
                    occurred_at=NOW,
                ),
            ],
            strict=True,
        )
    )


class TestResolved:
    """Resolved alerts become ``resolve`` events that find their incident."""

    @pytest.mark.parametrize(
        ("firing", "recovery"),
        _resolutions(),
        ids=["job_stuck", "job_timeout", "circuit_breaker", "resource_violation", "threshold"],
    )
    def test_recovery_resolves_the_trigger(self, firing: Event, recovery: Event) -> None:
        """The recovery of each built-in alert sends resolve with the trigger's dedup_key."""
        [opened] = alerts_for(firing)
        [closed] = alerts_for(recovery)
        trigger = render_event(opened, KEY)
        resolve = render_event(closed, KEY)
        assert trigger["event_action"] == "trigger"
        assert resolve == {
            "routing_key": KEY,
            "event_action": "resolve",
            "dedup_key": trigger["dedup_key"],
        }

    def test_a_completed_job_resolves_each_of_its_incidents(self) -> None:
        """A job that completes resolves every incident it had open, each by its key."""
        completed = JobCompleted(
            supervision_id=SID,
            job_class=JOB,
            duration=timedelta(minutes=40),
            resolves=[
                IncidentRef(type="job_stuck", key=SID),
                IncidentRef(type="resource_violation", key=f"{SID}:memory"),
            ],
            occurred_at=NOW,
        )
        keys = [render_event(alert, KEY)["dedup_key"] for alert in alerts_for(completed)]
        assert keys == [f"job_stuck:{SID}", f"resource_violation:{SID}:memory"]

    def test_any_recovery_event_renders_within_limits(self) -> None:
        """Any built-in event's alerts (firing or resolved) render within the limits."""

        @settings(PROPERTY, max_examples=50)
        @given(event=strategies.events())
        def check(event: Event) -> None:
            for alert in alerts_for(event):
                assert_within_limits(alert, render_event(alert, KEY))

        check()


CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
"""What must never reach PagerDuty: control characters but tab and newline, bidi
overrides, lone surrogates."""


class TestHostileText:
    """Text from a job reaches PagerDuty clean and within every limit."""

    def test_any_hostile_alert_renders_within_limits(self) -> None:
        """Any hostile alert renders within the limits, with no control character, bidi
        override or lone surrogate in any text of the event.
        """

        @PROPERTY
        @given(alert=strategies.hostile_alerts())
        def check(alert: Alert) -> None:
            event = render_event(alert, KEY)
            assert_within_limits(alert, event)
            for text in texts_in(event):
                assert not CONTROL.search(text), text[:80]

        check()

    def test_control_characters_are_removed(self) -> None:
        """The cleaning the channel uses drops C0 and C1 controls (tab and newline kept, a
        CRLF made a newline) and replaces lone surrogates, whatever text it is handed.
        """
        assert multi_line("a\x1b\x00\x85b\tc\r\nd\udcff\x7f") == "ab\tc\nd\ufffd"

    def test_a_lone_surrogate_is_accepted(self) -> None:
        """Lone surrogates in every text, even past the alert's own cleaning, render to
        an event within PagerDuty's limits that encodes to UTF-8.
        """
        alert = strategies.alert_with_raw_surrogates(NOW)
        event = render_event(alert, KEY)
        assert_within_limits(alert, event)
        assert "\ufffd".encode() in json.dumps(event, ensure_ascii=False).encode()
