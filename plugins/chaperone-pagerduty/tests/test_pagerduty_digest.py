r"""Digests through the ``pagerduty`` channel: the held alerts of a group become trigger
events within the Events API's limits that together name every alert, and each digest
opens an incident of its own.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

from chaperone_pagerduty import render_event
from chaperone_pagerduty._render import DEDUP_KEY_LIMIT, EVENT_LIMIT, SUMMARY_LIMIT, event_size
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaperone import Alert, AlertsGrouped, JobStuck, Settings
from chaperone.builtin.alerts import build_alerts
from chaperone.builtin.digests import digest_alerts
from chaperone.testing import strategies

AT = datetime(2024, 1, 15, 10, 0, tzinfo=UTC)
CLOSED = AT + timedelta(minutes=10)
JOB = "App\\Jobs\\ImportFeed"
ROUTING_KEY = "pdRoutingKey4ChaperoneTests0042Z"
PROPERTY = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def stuck_alerts(count: int, job_class: str = JOB) -> list[Alert]:
    """``count`` stuck alerts of one job class, 6 s apart, as the built-in builder makes."""
    runtime = cast(Any, SimpleNamespace(settings=Settings(app_url="https://app.example.com")))
    return [
        build_alerts(
            JobStuck(
                supervision_id=str(uuid.uuid4()),
                job_class=job_class,
                stuck_duration=timedelta(minutes=15),
                occurred_at=AT + timedelta(seconds=6 * number),
            ),
            runtime,
        )[0]
        for number in range(count)
    ]


def retitled(alert: Alert, title: str) -> Alert:
    """``alert`` with another title."""
    return Alert.from_dict({**alert.to_dict(), "title": title})


def digests_for(held: list[Alert], size: int = 20) -> list[Alert]:
    """The digest alerts for a window of ``held`` alerts, four sent before them."""
    event = AlertsGrouped(
        group_key=f"job_stuck|{JOB}",
        alerts=held,
        window=timedelta(minutes=10),
        window_started=AT,
        sent_individually=4,
        occurred_at=CLOSED,
    )
    return digest_alerts(event, CLOSED, size)


def assert_within_limits(event: dict[str, Any]) -> None:
    """The Events API's limits, and no custom detail left out for want of room."""
    assert event["event_action"] == "trigger"
    assert event_size(event) <= EVENT_LIMIT
    assert len(event["dedup_key"].encode("utf-8")) <= DEDUP_KEY_LIMIT
    summary = event["payload"]["summary"]
    assert 0 < len(summary) <= SUMMARY_LIMIT
    assert "\n" not in summary
    details = event["payload"]["custom_details"]
    assert "omitted" not in details, "a digest entry was left out"


def assert_each_listed_once(held: list[Alert], events: list[dict[str, Any]]) -> None:
    """Every held alert's key is in the custom details of exactly one event."""
    details = [json.dumps(event["payload"]["custom_details"]) for event in events]
    for alert in held:
        assert sum(alert.key in text for text in details) == 1, alert.key


class TestDigestEvents:
    """What PagerDuty is sent for a group's digest."""

    def test_a_hundred_held_alerts(self) -> None:
        """96 held stuck alerts make five trigger events, within every limit, naming each
        alert once, each under its own dedup key; the summary says what they stand for.
        """
        held = stuck_alerts(96)
        events = [render_event(digest, ROUTING_KEY) for digest in digests_for(held)]
        assert len(events) == 5
        for event in events:
            assert_within_limits(event)
        assert_each_listed_once(held, events)
        assert len({event["dedup_key"] for event in events}) == 5
        assert events[0]["payload"]["summary"] == (
            "96 job_stuck alerts for App\\Jobs\\ImportFeed in the last 10 minutes (part 1 of 5)"
        )
        assert events[0]["payload"]["group"] == JOB

    def test_two_flushes_of_one_window_open_two_incidents(self) -> None:
        """A digest flushed early (the count reached) and the one at the window's end have
        different dedup keys, so PagerDuty does not fold the second into the first.
        """
        held = stuck_alerts(30)
        early = render_event(digests_for(held[:20])[0], ROUTING_KEY)
        late = render_event(digests_for(held[20:])[0], ROUTING_KEY)
        assert early["dedup_key"] != late["dedup_key"]

    @PROPERTY
    @given(
        count=st.integers(min_value=1, max_value=45),
        size=st.integers(min_value=1, max_value=60),
        job_class=st.one_of(strategies.job_classes(), st.text(min_size=1, max_size=400)),
        title=strategies.texts(min_size=1),
    )
    def test_any_group_fits(self, count: int, size: int, job_class: str, title: str) -> None:
        """Whatever the job class, the alerts' titles and digest_size, every event fits
        the Events API and every held alert is named in exactly one.
        """
        held = [retitled(alert, title) for alert in stuck_alerts(count, job_class)]
        events = [render_event(digest, ROUTING_KEY) for digest in digests_for(held, size)]
        for event in events:
            assert_within_limits(event)
        assert_each_listed_once(held, events)
