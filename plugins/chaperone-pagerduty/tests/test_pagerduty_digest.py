r"""Digests through the ``pagerduty`` channel: the held alerts of a group become trigger
events within the Events API's limits that together name every alert, and each digest
opens an incident of its own.
"""

from __future__ import annotations

from typing import Any

from chaperone_pagerduty import render_event
from chaperone_pagerduty._render import DEDUP_KEY_LIMIT, EVENT_LIMIT, SUMMARY_LIMIT, event_size
from hypothesis import given

from chaperone import Alert
from chaperone.testing.digests import (
    JOB_CLASS,
    assert_each_listed_once,
    digest_sizes,
    held_group_settings,
    held_groups,
    held_stuck_alerts,
    sample_digests,
)

ROUTING_KEY = "pdRoutingKey4ChaperoneTests0042Z"
PROPERTY = held_group_settings(max_examples=30)


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


def custom_details(event: dict[str, Any]) -> Any:
    """The part of an event that lists a digest's entries."""
    return event["payload"]["custom_details"]


class TestDigestEvents:
    """What PagerDuty is sent for a group's digest."""

    def test_a_hundred_held_alerts(self) -> None:
        """96 held stuck alerts make five trigger events, within every limit, naming each
        alert once, each under its own dedup key; the summary says what they stand for.
        """
        held = held_stuck_alerts(96)
        events = [render_event(digest, ROUTING_KEY) for digest in sample_digests(held)]
        assert len(events) == 5
        for event in events:
            assert_within_limits(event)
        assert_each_listed_once(held, events, custom_details)
        assert len({event["dedup_key"] for event in events}) == 5
        assert events[0]["payload"]["summary"] == (
            "96 job_stuck alerts for App\\Jobs\\ImportFeed in the last 10 minutes (part 1 of 5)"
        )
        assert events[0]["payload"]["group"] == JOB_CLASS

    def test_two_flushes_of_one_window_open_two_incidents(self) -> None:
        """A digest flushed early (the count reached) and the one at the window's end have
        different dedup keys, so PagerDuty does not fold the second into the first.
        """
        held = held_stuck_alerts(30)
        early = render_event(sample_digests(held[:20])[0], ROUTING_KEY)
        late = render_event(sample_digests(held[20:])[0], ROUTING_KEY)
        assert early["dedup_key"] != late["dedup_key"]

    @PROPERTY
    @given(held=held_groups(), size=digest_sizes())
    def test_any_group_fits(self, held: list[Alert], size: int) -> None:
        """Whatever the job class, the alerts' titles and digest_size, every event fits
        the Events API and every held alert is named in exactly one.
        """
        events = [render_event(digest, ROUTING_KEY) for digest in sample_digests(held, size=size)]
        for event in events:
            assert_within_limits(event)
        assert_each_listed_once(held, events, custom_details)
