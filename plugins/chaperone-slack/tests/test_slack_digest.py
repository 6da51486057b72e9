r"""Digests through the ``slack`` channel: the held alerts of a group become messages
within Slack's limits that together name every alert, none hidden behind "more fields".
"""

from __future__ import annotations

import importlib
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

import pytest
from chaperone_slack import render
from chaperone_slack._render import (
    FIELD_TITLE_LIMIT,
    FIELD_VALUE_LIMIT,
    MAX_FIELDS,
    MESSAGE_LIMIT,
    SECTION_LIMIT,
    TEXT_LIMIT,
    slack_length,
    texts_of,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaperone import (
    Alert,
    AlertsGrouped,
    JobStuck,
    ManualClock,
    Monitor,
    PluginHost,
    Runtime,
    Settings,
)
from chaperone.builtin.alerts import build_alerts
from chaperone.builtin.digests import digest_alerts
from chaperone.store import MemoryStore
from chaperone.testing import strategies
from chaperone.testing.servers import RecordingServer

AT = datetime(2024, 1, 15, 10, 0, tzinfo=UTC)
CLOSED = AT + timedelta(minutes=10)
JOB = "App\\Jobs\\ImportFeed"
PROPERTY = settings(
    max_examples=40,
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
    """Slack's limits, and no field left out for want of room."""
    assert slack_length(payload["text"]) <= TEXT_LIMIT
    assert sum(slack_length(text) for text in texts_of(payload)) <= MESSAGE_LIMIT
    assert all(slack_length(text) <= SECTION_LIMIT for text in texts_of(payload))
    (attachment,) = payload["attachments"]
    fields = attachment.get("fields", [])
    assert len(fields) <= MAX_FIELDS + 1  # the links field may follow
    for field in fields:
        assert field["title"] != "More", "a digest entry was hidden"
        assert slack_length(field["title"]) <= FIELD_TITLE_LIMIT
        assert slack_length(field["value"]) <= FIELD_VALUE_LIMIT


def assert_each_listed_once(held: list[Alert], payloads: list[dict[str, Any]]) -> None:
    """Every held alert's key is in exactly one message."""
    dumped = [json.dumps(payload, ensure_ascii=False) for payload in payloads]
    for alert in held:
        assert sum(alert.key in text for text in dumped) == 1, alert.key


class TestDigestMessages:
    """What Slack is sent for a group's digest."""

    def test_a_hundred_held_alerts(self) -> None:
        """96 held stuck alerts make five messages of at most 20 fields, within every
        limit, naming each alert once; the body says what the digest stands for.
        """
        held = stuck_alerts(96)
        payloads = [render(digest) for digest in digests_for(held)]
        assert len(payloads) == 5
        for payload in payloads:
            assert_within_limits(payload)
        assert_each_listed_once(held, payloads)
        first = payloads[0]["attachments"][0]
        assert first["title"] == "App\\Jobs\\ImportFeed"
        assert first["text"].startswith(
            "96 job_stuck alerts for App\\Jobs\\ImportFeed in the last 10 minutes"
        )
        assert len(first["fields"]) == 20

    @PROPERTY
    @given(
        count=st.integers(min_value=1, max_value=45),
        size=st.integers(min_value=1, max_value=60),
        job_class=st.one_of(strategies.job_classes(), st.text(min_size=1, max_size=400)),
        title=strategies.texts(min_size=1),
    )
    def test_any_group_fits(self, count: int, size: int, job_class: str, title: str) -> None:
        """Whatever the job class, the alerts' titles and digest_size, every message fits
        Slack and every held alert is named in exactly one.
        """
        held = [retitled(alert, title) for alert in stuck_alerts(count, job_class)]
        payloads = [render(digest) for digest in digests_for(held, size)]
        for payload in payloads:
            assert_within_limits(payload)
        assert_each_listed_once(held, payloads)


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    with RecordingServer() as recording:
        yield recording


class TestOverHttp:
    """The whole way: grouping holds, the monitor flushes, Slack receives the digests."""

    def test_a_hundred_stuck_alerts_reach_slack_as_four_plus_digests(
        self, server: RecordingServer
    ) -> None:
        """100 stuck alerts of one job class inside 10 minutes reach a loopback Slack as
        four messages and then digests that together name the other 96.
        """
        slack = importlib.import_module("chaperone_slack")
        clock = ManualClock(AT)
        settings_ = Settings(
            channels=("slack",),
            store_url="memory://",
            channel_sections={"slack": {"webhook_url": server.url_for("/services/T0/B0/x")}},
        )
        ids = [str(uuid.uuid4()) for _ in range(100)]
        with Runtime(
            settings_,
            clock=clock,
            store=MemoryStore(clock),
            plugins=PluginHost(entry_points=False, extra=[("slack", slack)]),
        ) as runtime:
            monitor = Monitor(runtime)
            for number, supervision_id in enumerate(ids):
                clock.advance(6 if number else 0)
                monitor.tick()
                runtime.dispatch(
                    JobStuck(
                        supervision_id=supervision_id,
                        job_class=JOB,
                        stuck_duration=timedelta(minutes=15),
                    )
                )
            clock.advance(timedelta(minutes=10))
            monitor.tick()
        payloads: list[dict[str, Any]] = [
            cast(dict[str, Any], request.json()) for request in server.requests
        ]
        digests = [p for p in payloads if p["text"].endswith("Alert Digest")]
        alone = [p for p in payloads if not p["text"].endswith("Alert Digest")]
        assert len(alone) == 4
        assert len(digests) == 5
        for payload in payloads:
            assert_within_limits(payload)
        everything = [json.dumps(payload, ensure_ascii=False) for payload in payloads]
        for supervision_id in ids:
            assert sum(supervision_id in text for text in everything) == 1, supervision_id
