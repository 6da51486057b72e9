"""The event codec: how a job process hands an event to the monitor through the store.

Every built-in event must come back equal after ``encode_event`` / ``decode_event``;
text that is not an encoded event must be refused with ValueError (the queue detector
drops such records and goes on), never with another exception.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaperone import _events
from chaperone._alerts import Alert
from chaperone._event_codec import EventClasses, decode_event, encode_event
from chaperone._events import (
    AlertsGrouped,
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
from chaperone.testing import strategies

AT = datetime(2024, 1, 15, 10, 0, tzinfo=UTC)


def one_of_each() -> list[Event]:
    """One hand-built instance of every built-in event class."""
    return [
        JobStuck(
            supervision_id="a",
            job_class="App\\Jobs\\Report",
            stuck_duration=timedelta(minutes=5),
            last_heartbeat=AT - timedelta(minutes=5),
            occurred_at=AT,
        ),
        JobTimeout(
            supervision_id="b",
            job_class="etl.load",
            timeout=timedelta(seconds=30),
            actual_duration=timedelta(seconds=31, microseconds=7),
            occurred_at=AT,
        ),
        CircuitBreakerOpened(
            service="payments",
            failure_count=5,
            opened_at=AT,
            retry_at=AT + timedelta(seconds=60),
            occurred_at=AT,
        ),
        ResourceViolationDetected(
            supervision_id="c",
            job_class="x",
            violation_type=ViolationType.MEMORY,
            limit=512.0,
            actual=700.5,
            occurred_at=AT,
        ),
        ThresholdExceeded(
            metric=ThresholdMetric.ERROR_RATE,
            subject="*",
            value=12.5,
            threshold=10.0,
            window=timedelta(minutes=5),
            occurred_at=AT,
        ),
        JobRecovered(supervision_id="a", job_class="y", occurred_at=AT),
        JobCompleted(
            supervision_id="a",
            job_class="y",
            duration=timedelta(seconds=3),
            failed=True,
            error="ValueError: boom",
            resolves=(IncidentRef(type="job_stuck", key="a"), IncidentRef(type="x", key="y")),
            occurred_at=AT,
        ),
        CircuitBreakerClosed(service="payments", closed_at=AT, occurred_at=AT),
        JobFailed(
            supervision_id="e",
            job_class="backup.nightly",
            error="exit status 3",
            duration=timedelta(seconds=42),
            occurred_at=AT,
        ),
        JobMissed(
            job_class="reports.nightly",
            schedule="0 3 * * * (Europe/Berlin)",
            expected_at=AT - timedelta(hours=1),
            grace=timedelta(minutes=10),
            last_run_at=AT - timedelta(days=3),
            last_supervision_id="f",
            missed_count=3,
            occurred_at=AT,
        ),
        ScheduleRecovered(job_class="reports.nightly", reason="a run started", occurred_at=AT),
        RunsOverlapped(
            job_class="sync.inventory",
            supervision_id="g",
            running_id="h",
            running_since=AT - timedelta(minutes=20),
            occurred_at=AT,
        ),
        JobAbandoned(
            supervision_id="d",
            job_class="reports.nightly",
            supervisor="pid 42 on web-1",
            last_seen=AT - timedelta(minutes=1),
            occurred_at=AT,
        ),
        ChaperoneDegraded(
            part="channel:slack", reason="timed out", since=AT, process="chaperone monitor"
        ),
        ChaperoneRecovered(part="store", since=AT - timedelta(minutes=2), occurred_at=AT),
        ResourceRecovered(
            supervision_id="c", job_class="x", violation_type=ViolationType.CPU, actual=10.0
        ),
        ThresholdCleared(
            metric=ThresholdMetric.QUEUE_LENGTH, subject="default", value=1.0, threshold=10.0
        ),
        AlertsGrouped(
            group_key="job_stuck|App\\Jobs\\Import",
            alerts=[
                Alert(
                    type="job_stuck",
                    key="k1",
                    headline="Job Stuck",
                    title="Job Stuck: App\\Jobs\\Import",
                    summary="stuck",
                    occurred_at=AT,
                    labels={"team": "data"},
                    fields={"Supervision ID": "k1"},
                )
            ],
            window=timedelta(minutes=10),
            window_started=AT,
            sent_individually=4,
            occurred_at=AT,
        ),
        MaintenanceEnded(
            window_id="mw-1",
            started_at=AT,
            ended_at=AT + timedelta(minutes=30),
            reason="deploy",
            matches="job_class=App\\Jobs\\*",
            suppressed=3,
            by_type={"job_stuck": 2, "job_timeout": 1},
            examples=("Job Stuck: A", "Job Timeout: B"),
            occurred_at=AT,
        ),
    ]


def builtin_event_classes() -> set[type[Event]]:
    """Every concrete event class chaperone._events exports."""
    return {
        cls
        for name in _events.__all__
        if isinstance(cls := getattr(_events, name), type)
        and issubclass(cls, Event)
        and cls is not Event
    }


def _instants(values: Iterable[datetime]) -> tuple[datetime, ...]:
    return tuple(values)


@attrs.frozen(kw_only=True)
class DeployFinished(Event):
    """A plugin's own event, with nested instants and durations."""

    service: str
    steps: tuple[datetime, ...] = attrs.field(converter=_instants)
    timings: dict[str, Any] = attrs.field(factory=dict)


class TestRoundTrip:
    """encode_event then decode_event gives back an equal event."""

    @given(event=strategies.events())
    def test_any_builtin_event_round_trips(self, event: Event) -> None:
        """Any event the strategies draw comes back equal, of the same class."""
        decoded = decode_event(encode_event(event))
        assert type(decoded) is type(event)
        assert decoded == event

    def test_a_failure_with_a_lone_surrogate_round_trips(self) -> None:
        """A failed run's error from a broken exception message (a lone surrogate) is
        made valid as the event is built, so it crosses the queue unchanged."""
        event = JobFailed(
            supervision_id="run-1",
            job_class="nightly",
            error="ValueError: bad byte \ud800 here",
            duration=timedelta(seconds=1),
            occurred_at=datetime(2024, 1, 15, tzinfo=UTC),
        )
        assert event.error == "ValueError: bad byte \ufffd here"
        assert decode_event(encode_event(event)) == event

    def test_the_hand_built_list_covers_every_builtin_class(self) -> None:
        """The list below has one event of each built-in class, so nothing is left out."""
        assert {type(event) for event in one_of_each()} == builtin_event_classes()

    @pytest.mark.parametrize("event", one_of_each(), ids=lambda event: type(event).__name__)
    def test_each_builtin_class_round_trips(self, event: Event) -> None:
        """Each built-in class, optional fields set or left out, comes back equal."""
        assert decode_event(encode_event(event)) == event

    def test_encoded_text_is_json_naming_the_class(self) -> None:
        """The encoded form is JSON with the class name and the fields."""
        data = json.loads(encode_event(one_of_each()[0]))
        assert data["event"] == "JobStuck"
        assert data["fields"]["supervision_id"] == "a"

    @given(
        at=strategies.aware_datetimes(),
        offset=st.integers(min_value=-23 * 60, max_value=23 * 60),
    )
    def test_instants_in_other_offsets_come_back_as_the_same_utc_instant(
        self, at: datetime, offset: int
    ) -> None:
        """An instant given in any offset decodes to the same instant, in UTC."""
        shifted = at.astimezone(timezone(timedelta(minutes=offset)))
        event = CircuitBreakerClosed(service="s", closed_at=shifted, occurred_at=shifted)
        decoded = decode_event(encode_event(event))
        assert isinstance(decoded, CircuitBreakerClosed)
        assert decoded.closed_at == at
        assert decoded.closed_at.utcoffset() == timedelta(0)

    @given(duration=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=999_999_999)))
    def test_durations_come_back_to_the_microsecond(self, duration: timedelta) -> None:
        """Any duration timedelta can hold, however long, survives exactly."""
        event = JobTimeout(
            supervision_id="s",
            job_class="c",
            timeout=timedelta(0),
            actual_duration=duration,
            occurred_at=AT,
        )
        decoded = decode_event(encode_event(event))
        assert isinstance(decoded, JobTimeout)
        assert decoded.actual_duration == duration

    def test_a_registered_plugin_event_round_trips(self) -> None:
        """A plugin's event class decodes once registered, instants inside lists and
        mappings included."""
        classes = EventClasses()
        classes.register(DeployFinished, "deploys")
        event = DeployFinished(
            service="web",
            steps=(AT, AT + timedelta(seconds=1)),
            timings={"build": timedelta(seconds=90), "at": AT, "note": "ok"},
            occurred_at=AT,
        )
        assert decode_event(encode_event(event), classes) == event


class TestRefusals:
    """Text that is not an encoded event is refused with ValueError."""

    def test_an_unregistered_class_is_refused(self) -> None:
        """A class the codec does not know is a ValueError naming it."""
        text = json.dumps({"event": "NoSuchEvent", "fields": {}})
        with pytest.raises(ValueError, match="NoSuchEvent"):
            decode_event(text)

    @pytest.mark.parametrize(
        "text",
        [
            "not json",
            "[]",
            "null",
            '"JobStuck"',
            '{"fields": {}}',
            '{"event": "JobStuck"}',
            '{"event": "JobStuck", "fields": []}',
            '{"event": ["JobStuck"], "fields": {}}',
            '{"event": "JobStuck", "fields": {"supervision_id": "a"}}',
            '{"event": "JobStuck", "fields": {"supervision_id": "a", "job_class": "b",'
            ' "stuck_duration": {"$seconds": -1}}}',
            '{"event": "JobStuck", "fields": {"supervision_id": "a", "job_class": "b",'
            ' "stuck_duration": {"$seconds": 1}, "occurred_at": {"$datetime": "yesterday"}}}',
            '{"event": "JobStuck", "fields": {"supervision_id": "a", "job_class": "b",'
            ' "stuck_duration": {"$seconds": 1}, "nonsense": 1}}',
        ],
    )
    def test_malformed_text_is_a_value_error(self, text: str) -> None:
        """Malformed JSON, a wrong shape, missing, extra or invalid fields: ValueError."""
        with pytest.raises(ValueError):  # noqa: PT011 - the messages vary by case
            decode_event(text)
