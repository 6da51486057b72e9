r"""Digests through the ``opsgenie`` channel: the held alerts of a group become create
requests within Opsgenie's limits that together name every alert, each digest an
Opsgenie alert of its own.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

from chaperone_opsgenie._render import (
    ALIAS_LIMIT,
    DESCRIPTION_LIMIT,
    DETAILS_TOTAL_LIMIT,
    MESSAGE_LIMIT,
    create_payload,
    utf16_length,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaperone import Alert, AlertsGrouped, JobStuck, Settings
from chaperone.builtin.alerts import build_alerts
from chaperone.builtin.digests import digest_alerts
from chaperone.testing import strategies

AT = datetime(2024, 1, 15, 10, 0, tzinfo=UTC)
CLOSED = AT + timedelta(minutes=10)
JOB = "App\\Jobs\\ImportFeed"
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


def assert_within_limits(payload: dict[str, Any]) -> None:
    """Opsgenie's limits on a create request."""
    assert 0 < utf16_length(payload["message"]) <= MESSAGE_LIMIT
    assert 0 < utf16_length(payload["alias"]) <= ALIAS_LIMIT
    assert utf16_length(payload["description"]) <= DESCRIPTION_LIMIT
    details = payload["details"]
    total = sum(utf16_length(key) + utf16_length(value) for key, value in details.items())
    assert total <= DETAILS_TOTAL_LIMIT


def assert_each_listed_once(held: list[Alert], payloads: list[dict[str, Any]]) -> None:
    """Every held alert's key is in the description, and in the details, of exactly one
    request.
    """
    descriptions = [payload["description"] for payload in payloads]
    details = [json.dumps(payload["details"], ensure_ascii=False) for payload in payloads]
    for alert in held:
        assert sum(alert.key in text for text in descriptions) == 1, alert.key
        assert sum(alert.key in text for text in details) == 1, alert.key


class TestDigestAlerts:
    """What Opsgenie is sent for a group's digest."""

    def test_a_hundred_held_alerts(self) -> None:
        """96 held stuck alerts make five create requests within every limit, naming each
        alert once, each under its own alias; the message says what they stand for.
        """
        held = stuck_alerts(96)
        payloads = [create_payload(digest) for digest in digests_for(held)]
        assert len(payloads) == 5
        for payload in payloads:
            assert_within_limits(payload)
        assert_each_listed_once(held, payloads)
        assert len({payload["alias"] for payload in payloads}) == 5
        assert payloads[0]["message"] == (
            "96 job_stuck alerts for App\\Jobs\\ImportFeed in the last 10 minutes (part 1 of 5)"
        )
        assert payloads[0]["entity"] == JOB

    def test_two_flushes_of_one_window_make_two_alerts(self) -> None:
        """A digest flushed early and the one at the window's end have different aliases,
        so Opsgenie does not count the second on the first.
        """
        held = stuck_alerts(30)
        early = create_payload(digests_for(held[:20])[0])
        late = create_payload(digests_for(held[20:])[0])
        assert early["alias"] != late["alias"]

    @PROPERTY
    @given(
        count=st.integers(min_value=1, max_value=45),
        size=st.integers(min_value=1, max_value=60),
        job_class=st.one_of(strategies.job_classes(), st.text(min_size=1, max_size=400)),
        title=strategies.texts(min_size=1),
    )
    def test_any_group_fits(self, count: int, size: int, job_class: str, title: str) -> None:
        """Whatever the job class, the alerts' titles and digest_size, every request fits
        Opsgenie and every held alert is named in exactly one.
        """
        held = [retitled(alert, title) for alert in stuck_alerts(count, job_class)]
        payloads = [create_payload(digest) for digest in digests_for(held, size)]
        for payload in payloads:
            assert_within_limits(payload)
        assert_each_listed_once(held, payloads)
