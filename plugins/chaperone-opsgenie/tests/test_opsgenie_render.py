"""Rendering alerts as Opsgenie requests: every documented limit for any alert, the
seed's format for each built-in alert type, resolutions, priorities and aliases.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import attrs
import pytest
from chaperone_opsgenie._render import (
    ALIAS_LIMIT,
    DESCRIPTION_LIMIT,
    DETAIL_KEY_LIMIT,
    DETAIL_VALUE_LIMIT,
    DETAILS_TOTAL_LIMIT,
    ENTITY_LIMIT,
    MESSAGE_LIMIT,
    NOTE_LIMIT,
    TAG_COUNT_LIMIT,
    TAG_LENGTH_LIMIT,
    acknowledge_payload,
    alias_for,
    close_payload,
    create_payload,
    priority_for,
)
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
    Priority,
    ResourceRecovered,
    ResourceViolationDetected,
    Severity,
    ThresholdCleared,
    ThresholdExceeded,
    ThresholdMetric,
    ViolationType,
)
from chaperone.builtin.alert_builder import build_alerts
from chaperone.channels.text import fit, utf16_length
from chaperone.config import Settings
from chaperone.testing import strategies
from chaperone.testing.strategies import (
    OVERSIZED_LENGTH,
    alert_types,
    alerts,
    hostile_alerts,
    texts,
)

PROPERTY = settings(
    deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
WHEN = datetime(2024, 1, 15, 10, 30, tzinfo=UTC)
SUPERVISION_ID = "550e8400-e29b-41d4-a716-446655440000"
APP_URL = "https://app.example.com"
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
EXTRA_TAGS = [f"extra-{number}" for number in range(16)]


def oversized_alert(**changes: Any) -> Alert:
    """Every text far over every limit, astral-plane characters included."""
    text = ("Ünïcødé ⚠ 🚨\r\n\x00" * OVERSIZED_LENGTH)[:OVERSIZED_LENGTH]
    alert = Alert(
        type="job_stuck_" + "x" * 80,
        key=text,
        headline=text,
        title="🚨" * 5000,
        summary=text,
        explanation=text,
        fields={f"{text[:300]} {index}": text for index in range(60)},
        job_class=text,
        supervision_id=text,
        service=text,
        labels={f"team {index}": text for index in range(10)},
        # As long as links an alert keeps may be (a longer one is left out).
        details_url="https://example.com/" + "x" * 4000,
        runbook_url="https://example.com/" + "y" * 4000,
        occurred_at=WHEN,
    )
    return attrs.evolve(alert, **changes)


def small_alert(**changes: Any) -> Alert:
    """A short firing alert, changed by ``changes``."""
    alert = Alert(
        type="job_stuck",
        key=SUPERVISION_ID,
        headline="Job Stuck",
        title="Job Stuck: App\\Jobs\\X",
        summary="Stuck.",
        occurred_at=WHEN,
    )
    return attrs.evolve(alert, **changes)


def texts_of(value: Any) -> list[str]:
    """Every string inside a JSON-like value, keys included."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for key, item in value.items() for text in [key, *texts_of(item)]]
    if isinstance(value, list):
        return [text for item in value for text in texts_of(item)]
    return []


def assert_sendable(payload: dict[str, Any]) -> None:
    """The payload encodes as UTF-8 JSON and holds no control character but tab and
    newline, and no lone surrogate.
    """
    json.dumps(payload, ensure_ascii=False).encode("utf-8")
    for text in texts_of(payload):
        assert not CONTROL.search(text), f"a control character in {text[:80]!r}"


def assert_create_within_limits(payload: dict[str, Any]) -> None:
    """Every limit Opsgenie documents for a create request."""
    assert set(payload) <= {
        "message",
        "alias",
        "description",
        "priority",
        "source",
        "tags",
        "details",
        "entity",
    }
    message = payload["message"]
    assert 1 <= utf16_length(message) <= MESSAGE_LIMIT
    assert "\n" not in message
    assert message == message.strip()
    assert 1 <= utf16_length(payload["alias"]) <= ALIAS_LIMIT
    assert utf16_length(payload["description"]) <= DESCRIPTION_LIMIT
    assert payload["priority"] in {"P1", "P2", "P3", "P4", "P5"}
    assert payload["source"] == "Chaperone"
    tags = payload["tags"]
    assert len(tags) <= TAG_COUNT_LIMIT
    assert len(set(tags)) == len(tags)
    assert all(1 <= utf16_length(tag) <= TAG_LENGTH_LIMIT for tag in tags)
    assert tags[:2] == ["chaperone", "queue-jobs"]
    details = payload["details"]
    assert all(isinstance(key, str) and isinstance(value, str) for key, value in details.items())
    assert all(1 <= utf16_length(key) <= DETAIL_KEY_LIMIT for key in details)
    assert all(utf16_length(value) <= DETAIL_VALUE_LIMIT for value in details.values())
    total = sum(utf16_length(key) + utf16_length(value) for key, value in details.items())
    assert total <= DETAILS_TOTAL_LIMIT
    if "entity" in payload:
        assert 1 <= utf16_length(payload["entity"]) <= ENTITY_LIMIT
    assert_sendable(payload)


def assert_close_within_limits(payload: dict[str, str]) -> None:
    """The limits of a close request's body."""
    assert set(payload) == {"source", "note"}
    assert payload["source"] == "Chaperone"
    assert 1 <= utf16_length(payload["note"]) <= NOTE_LIMIT
    assert_sendable(payload)


class TestLimits:
    """Any alert renders within every limit Opsgenie documents."""

    @PROPERTY
    @given(alert=alerts(), tags=st.lists(st.sampled_from(EXTRA_TAGS), max_size=16))
    @example(alert=oversized_alert(), tags=EXTRA_TAGS)
    @example(alert=oversized_alert(status=AlertStatus.RESOLVED), tags=[])
    def test_any_alert_renders_within_limits(self, alert: Alert, tags: list[str]) -> None:
        """Any alert, however long or strange, and with the most extra tags, renders a
        create request (message, alias, description, tags, details, entity) and a close
        request (note) within Opsgenie's limits.
        """
        assert_create_within_limits(create_payload(alert, extra_tags=tags))
        assert_close_within_limits(close_payload(alert))

    @PROPERTY
    @given(
        alert=alerts(status=AlertStatus.ACKNOWLEDGED)
        | hostile_alerts(status=AlertStatus.UNACKNOWLEDGED)
    )
    @example(alert=oversized_alert(status=AlertStatus.ACKNOWLEDGED))
    def test_any_acknowledgement_renders_within_limits(self, alert: Alert) -> None:
        """The body of an acknowledge (or unacknowledge) request for any alert holds the
        source and a note within Opsgenie's limits, and the note starts with what the
        summary says on its first line.
        """
        payload = acknowledge_payload(alert)
        assert_close_within_limits(payload)
        first = alert.summary.strip().split("\n")[0].strip()
        if first and len(first) < 100 and first.isprintable():
            assert first[:50] in payload["note"]

    def test_oversized_alert_keeps_explanation_and_links(self) -> None:
        """Cutting an oversized description drops fields, not the explanation or links."""
        alert = oversized_alert(explanation="Check the feed's size.")
        description = create_payload(alert)["description"]
        assert description.endswith(
            "Check the feed's size.\n\nView Job Details: https://example.com/"
            + "x" * 1979
            + "…\nRunbook: https://example.com/"
            + "y" * 1979
            + "…"
        )

    def test_astral_characters_count_twice(self) -> None:
        """A title of emoji is cut to 130 UTF-16 code units, not 130 characters."""
        message = create_payload(oversized_alert())["message"]
        assert message == "🚨" * 64 + "…"
        assert utf16_length(message) == 129

    def test_details_fill_up_to_the_total_limit(self) -> None:
        """Many fields fill the details up to 8,000 characters and leave the rest out."""
        alert = oversized_alert()
        details = create_payload(alert)["details"]
        total = sum(utf16_length(key) + utf16_length(value) for key, value in details.items())
        assert DETAILS_TOTAL_LIMIT - DETAIL_KEY_LIMIT <= total <= DETAILS_TOTAL_LIMIT
        assert list(details)[:3] == ["Alert Type", "Alert Key", "Severity"]

    def test_colliding_detail_names_stay_apart(self) -> None:
        """Two fields whose names collide (after trimming) both keep their values."""
        alert = oversized_alert(
            fields=[("Job Class", "Other"), ("  Job\tClass ", "Third"), ("\x00", "nameless")],
            job_class="App\\Jobs\\X",
            labels={},
            details_url=None,
            runbook_url=None,
            supervision_id=None,
            service=None,
            key="k",
        )
        details = create_payload(alert)["details"]
        assert details["Job Class"] == "App\\Jobs\\X"
        assert details["Job Class (2)"] == "Other"
        assert details["Job Class (3)"] == "Third"
        assert details["Field 3"] == "nameless"

    @pytest.mark.parametrize(
        ("text", "limit", "expected"),
        [
            ("short", 10, "short"),
            ("exactly10!", 10, "exactly10!"),
            ("one too long", 11, "one too lo…"),
            ("trailing space here", 10, "trailing…"),
            ("🚨🚨🚨", 6, "🚨🚨🚨"),
            ("🚨🚨🚨", 5, "🚨🚨…"),
            ("🚨🚨🚨", 4, "🚨…"),
        ],
    )
    def test_fit(self, text: str, limit: int, expected: str) -> None:
        """fit() cuts in UTF-16 code units and ends a cut text with an ellipsis."""
        assert fit(text, limit, measure=utf16_length) == expected
        assert utf16_length(fit(text, limit, measure=utf16_length)) <= limit


class TestAlias:
    """The alias identifies the incident: stable, distinct, within 512 characters."""

    @PROPERTY
    @given(
        identity=st.tuples(alert_types(), texts(min_size=1)),
        other=st.tuples(alert_types(), texts(min_size=1)),
        status=st.sampled_from(AlertStatus),
        title=texts(min_size=1, oversized=False),
    )
    def test_same_incident_same_alias(
        self, identity: tuple[str, str], other: tuple[str, str], status: str, title: str
    ) -> None:
        """Firing and resolved alerts of one incident share the alias, whatever else
        differs; alerts of different incidents do not.
        """
        first = small_alert(type=identity[0], key=identity[1])
        again = small_alert(type=identity[0], key=identity[1], status=status, title=title)
        assert alias_for(again) == alias_for(first)
        different = small_alert(type=other[0], key=other[1])
        if different.incident_key != first.incident_key:
            assert alias_for(different) != alias_for(first)

    def test_plain_identity_is_the_alias(self) -> None:
        """A plain identity is used as it is: ``<type>:<key>``."""
        alert = oversized_alert(key=SUPERVISION_ID, type="job_stuck")
        assert alias_for(alert) == f"job_stuck:{SUPERVISION_ID}"

    @pytest.mark.parametrize(
        ("key", "alias"),
        [
            ("line\nbreak", "job_stuck:line break"),
            ("nul\x00byte", "job_stuck:nulbyte"),
            ("lone \ud800 surrogate", "job_stuck:lone \ufffd surrogate"),
        ],
    )
    def test_odd_characters_reach_it_cleaned(self, key: str, alias: str) -> None:
        """A key's line breaks, control characters and lone surrogates were made safe when
        the alert was built: what is left is plain one-line text, used as it is.
        """
        assert alias_for(oversized_alert(key=key, type="job_stuck")) == alias

    @pytest.mark.parametrize("key", ["k" * 600, " padded "])
    def test_long_or_odd_identity_is_hashed(self, key: str) -> None:
        """An identity too long or not plain one-line text gets ``<start>#<sha256>``."""
        alert = oversized_alert(key=key, type="job_stuck")
        alias = alias_for(alert)
        digest = hashlib.sha256(alert.incident_key.encode("utf-8", "surrogatepass")).hexdigest()
        assert alias.endswith("#" + digest)
        assert alias.startswith("job_stuck:")
        assert utf16_length(alias) <= ALIAS_LIMIT
        assert "\n" not in alias
        assert "\x00" not in alias


class TestPriority:
    """P1..P5 from the alert's priority, else from its severity."""

    @pytest.mark.parametrize(
        ("priority", "severity", "expected"),
        [
            *[(Priority.CRITICAL, severity, "P1") for severity in Severity],
            *[(Priority.HIGH, severity, "P2") for severity in Severity],
            *[(Priority.LOW, severity, "P4") for severity in Severity],
            (Priority.NORMAL, Severity.CRITICAL, "P1"),
            (Priority.NORMAL, Severity.ERROR, "P2"),
            (Priority.NORMAL, Severity.WARNING, "P3"),
            (Priority.NORMAL, Severity.INFO, "P5"),
        ],
    )
    def test_mapping(self, priority: Priority, severity: Severity, expected: str) -> None:
        """The documented mapping, for every priority and severity."""
        alert = small_alert(priority=priority, severity=severity)
        assert priority_for(alert) == expected
        assert create_payload(alert)["priority"] == expected


# -- the built-in alerts ---------------------------------------------------------------------


def built(event: Event) -> list[Alert]:
    """The core's alerts for ``event``, with an app URL for the details link."""
    runtime = SimpleNamespace(settings=Settings(app_url=APP_URL))
    alerts = build_alerts(event, runtime)  # type: ignore[arg-type]
    assert alerts is not None
    return list(alerts)


def only(event: Event) -> Alert:
    """The one alert the core builds for ``event``."""
    [alert] = built(event)
    return alert


STUCK = JobStuck(
    supervision_id=SUPERVISION_ID,
    job_class="App\\Jobs\\ProcessLargeDataset",
    stuck_duration=timedelta(minutes=30),
    last_heartbeat=WHEN - timedelta(minutes=30),
    occurred_at=WHEN,
)
TIMEOUT = JobTimeout(
    supervision_id=SUPERVISION_ID,
    job_class="App\\Jobs\\GenerateMonthlyReport",
    timeout=timedelta(seconds=300),
    actual_duration=timedelta(seconds=350),
    occurred_at=WHEN,
)
BREAKER = CircuitBreakerOpened(
    service="payment-gateway",
    failure_count=10,
    opened_at=WHEN,
    retry_at=WHEN + timedelta(seconds=60),
    occurred_at=WHEN,
)
RESOURCE = ResourceViolationDetected(
    supervision_id=SUPERVISION_ID,
    job_class="App\\Jobs\\ImportCustomerFeed",
    violation_type=ViolationType.MEMORY,
    limit=512,
    actual=768,
    occurred_at=WHEN,
)
THRESHOLD = ThresholdExceeded(
    metric=ThresholdMetric.QUEUE_LENGTH,
    subject="App\\Jobs\\SendInvoice",
    value=1500,
    threshold=1000,
    occurred_at=WHEN,
)


class TestSeedFormat:
    """The four sample alert types (and thresholds) as the seed's examples show them."""

    def test_job_stuck(self) -> None:
        """A stuck job: the seed's e-mail body as description, P2, the job as entity."""
        payload = create_payload(only(STUCK))
        assert payload == {
            "message": "Job Stuck: App\\Jobs\\ProcessLargeDataset",
            "alias": f"job_stuck:{SUPERVISION_ID}",
            "description": (
                "A supervised job has been detected as stuck and may require intervention.\n"
                "\n"
                f"Supervision ID: {SUPERVISION_ID}\n"
                "Job Class: App\\Jobs\\ProcessLargeDataset\n"
                "Stuck Duration: 30 minutes\n"
                "Last Heartbeat: 2024-01-15 10:00:00 UTC\n"
                "\n"
                "This job may be in an infinite loop, deadlocked, or otherwise unable to "
                "complete.\n"
                "\n"
                f"View Job Details: {APP_URL}/chaperone/jobs/{SUPERVISION_ID}"
            ),
            "priority": "P2",
            "source": "Chaperone",
            "tags": ["chaperone", "queue-jobs", "job_stuck", "severity:error"],
            "details": {
                "Alert Type": "job_stuck",
                "Alert Key": SUPERVISION_ID,
                "Severity": "error",
                "Supervision ID": SUPERVISION_ID,
                "Job Class": "App\\Jobs\\ProcessLargeDataset",
                "Details URL": f"{APP_URL}/chaperone/jobs/{SUPERVISION_ID}",
                "Occurred At": "2024-01-15 10:30:00 UTC",
                "Stuck Duration": "30 minutes",
                "Last Heartbeat": "2024-01-15 10:00:00 UTC",
            },
            "entity": "App\\Jobs\\ProcessLargeDataset",
        }

    def test_job_timeout(self) -> None:
        """A timed-out job: P2, its limit and overrun in description and details."""
        payload = create_payload(only(TIMEOUT))
        assert payload["message"] == "Job Timeout: App\\Jobs\\GenerateMonthlyReport"
        assert payload["alias"] == f"job_timeout:{SUPERVISION_ID}"
        assert payload["priority"] == "P2"
        assert payload["tags"] == ["chaperone", "queue-jobs", "job_timeout", "severity:error"]
        assert payload["description"].startswith(
            "A supervised job has exceeded its timeout limit.\n\n"
            f"Supervision ID: {SUPERVISION_ID}\n"
            "Job Class: App\\Jobs\\GenerateMonthlyReport\n"
            "Timeout Limit: 300s\nActual Duration: 350s\nExceeded By: 50s\n\n"
            "The job may be processing more data than expected"
        )
        assert payload["details"]["Exceeded By"] == "50s"
        assert payload["entity"] == "App\\Jobs\\GenerateMonthlyReport"

    def test_circuit_breaker(self) -> None:
        """An open circuit breaker: critical, so P1; the service is the entity."""
        payload = create_payload(only(BREAKER))
        assert payload["message"] == "Circuit Breaker Opened: payment-gateway"
        assert payload["alias"] == "circuit_breaker:payment-gateway"
        assert payload["priority"] == "P1"
        assert payload["tags"] == [
            "chaperone",
            "queue-jobs",
            "circuit_breaker",
            "severity:critical",
        ]
        assert payload["entity"] == "payment-gateway"
        assert payload["details"]["Service"] == "payment-gateway"
        assert payload["details"]["Failure Count"] == "10"
        assert payload["details"]["Next Trial At"] == "2024-01-15 10:31:00 UTC"
        assert "View Job Details" not in payload["description"]

    def test_resource_violation(self) -> None:
        """A resource violation: a warning, so P3; the alias names the resource."""
        payload = create_payload(only(RESOURCE))
        assert payload["message"] == "Resource Violation: App\\Jobs\\ImportCustomerFeed"
        assert payload["alias"] == f"resource_violation:{SUPERVISION_ID}:memory"
        assert payload["priority"] == "P3"
        assert "Limit: 512 MB\nActual: 768 MB\nExceeded By: 256 MB" in payload["description"]
        assert payload["details"]["label.violation_type"] == "memory"

    def test_threshold(self) -> None:
        """A threshold over its limit: a warning, so P3."""
        payload = create_payload(only(THRESHOLD))
        assert payload["message"] == "Queue Length Exceeded: App\\Jobs\\SendInvoice"
        assert payload["alias"] == "threshold:queue_length:App\\Jobs\\SendInvoice"
        assert payload["priority"] == "P3"
        assert payload["details"]["Value"] == "1500 jobs"

    def test_extra_tags_follow_chaperones(self) -> None:
        """Configured tags come after Chaperone's own, duplicates dropped."""
        payload = create_payload(only(STUCK), extra_tags=["prod", "chaperone", "team-a"])
        assert payload["tags"] == [
            "chaperone",
            "queue-jobs",
            "job_stuck",
            "severity:error",
            "prod",
            "team-a",
        ]


class TestResolutions:
    """A resolution closes the alert its incident opened, with a note of how it ended."""

    @pytest.mark.parametrize(
        ("firing", "resolving"),
        [
            (
                STUCK,
                JobRecovered(
                    supervision_id=SUPERVISION_ID,
                    job_class="App\\Jobs\\ProcessLargeDataset",
                    recovered_from="job_stuck",
                    reason="heartbeats resumed",
                    occurred_at=WHEN,
                ),
            ),
            (
                TIMEOUT,
                JobCompleted(
                    supervision_id=SUPERVISION_ID,
                    job_class="App\\Jobs\\GenerateMonthlyReport",
                    duration=timedelta(seconds=400),
                    resolves=(IncidentRef(type="job_timeout", key=SUPERVISION_ID),),
                    occurred_at=WHEN,
                ),
            ),
            (
                BREAKER,
                CircuitBreakerClosed(service="payment-gateway", closed_at=WHEN, occurred_at=WHEN),
            ),
            (
                RESOURCE,
                ResourceRecovered(
                    supervision_id=SUPERVISION_ID,
                    job_class="App\\Jobs\\ImportCustomerFeed",
                    violation_type=ViolationType.MEMORY,
                    actual=300,
                    occurred_at=WHEN,
                ),
            ),
            (
                THRESHOLD,
                ThresholdCleared(
                    metric=ThresholdMetric.QUEUE_LENGTH,
                    subject="App\\Jobs\\SendInvoice",
                    value=10,
                    threshold=1000,
                    occurred_at=WHEN,
                ),
            ),
        ],
        ids=["stuck", "timeout", "circuit-breaker", "resource", "threshold"],
    )
    def test_resolution_closes_the_firing_alias(self, firing: Event, resolving: Event) -> None:
        """Each built-in resolution targets the alias its firing alert opened."""
        resolved = only(resolving)
        assert resolved.is_resolved
        assert alias_for(resolved) == create_payload(only(firing))["alias"]
        payload = close_payload(resolved)
        assert_close_within_limits(payload)
        assert payload["note"].startswith(f"{resolved.title}\n{resolved.summary}")

    def test_recovered_note(self) -> None:
        """The seed's close: source Chaperone and a note of what happened."""
        resolved = only(
            JobRecovered(
                supervision_id=SUPERVISION_ID,
                job_class="App\\Jobs\\ProcessLargeDataset",
                recovered_from="job_stuck",
                reason="heartbeats resumed",
                occurred_at=WHEN,
            )
        )
        assert close_payload(resolved) == {
            "source": "Chaperone",
            "note": "Job Recovered: App\\Jobs\\ProcessLargeDataset\n"
            "The job recovered: heartbeats resumed.\n\n"
            f"Supervision ID: {SUPERVISION_ID}\n"
            "Job Class: App\\Jobs\\ProcessLargeDataset",
        }

    def test_note_never_empty(self) -> None:
        """A resolution with no text at all still sends a note (its message)."""
        resolved = oversized_alert(
            status=AlertStatus.RESOLVED, title="\x00", summary="", fields=(), headline="Gone"
        )
        assert close_payload(resolved)["note"] == "Gone"


class TestHostileText:
    """Text from a job reaches Opsgenie clean and within every limit."""

    @PROPERTY
    @given(alert=hostile_alerts())
    def test_any_hostile_alert_renders_within_limits(self, alert: Alert) -> None:
        """Any hostile alert (lone surrogates, escape sequences, bidi overrides, markup,
        a megabyte of text) renders a create and a close request within every limit,
        with no control character left.
        """
        assert_create_within_limits(create_payload(alert))
        assert_close_within_limits(close_payload(alert))

    def test_a_lone_surrogate_is_accepted(self) -> None:
        """Lone surrogates in every text, even past the alert's own cleaning, render to
        requests within Opsgenie's limits that encodes to UTF-8.
        """
        alert = strategies.alert_with_raw_surrogates(WHEN)
        create, close = create_payload(alert), close_payload(alert)
        assert_create_within_limits(create)
        assert_close_within_limits(close)
        assert "\ufffd".encode() in json.dumps(create, ensure_ascii=False).encode()
        json.dumps(close, ensure_ascii=False).encode()
