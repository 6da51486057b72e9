r"""Digests through the ``slack`` channel: the held alerts of a group become messages
within Slack's limits that together name every alert, none hidden behind "more fields".
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
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
    texts_of,
)
from hypothesis import given

from chaperone import Alert, Chaperone, ManualClock, PluginHost, Settings
from chaperone.channels.text import utf16_length
from chaperone.store import MemoryStore
from chaperone.testing.digests import (
    WINDOW_STARTED,
    assert_each_listed_once,
    digest_sizes,
    held_group_settings,
    held_groups,
    held_stuck_alerts,
    raise_stuck_alerts,
    sample_digests,
)
from chaperone.testing.servers import RecordingServer

PROPERTY = held_group_settings(max_examples=40)


def assert_within_limits(payload: dict[str, Any]) -> None:
    """Slack's limits, and no field left out for want of room."""
    assert utf16_length(payload["text"]) <= TEXT_LIMIT
    assert sum(utf16_length(text) for text in texts_of(payload)) <= MESSAGE_LIMIT
    assert all(utf16_length(text) <= SECTION_LIMIT for text in texts_of(payload))
    (attachment,) = payload["attachments"]
    fields = attachment.get("fields", [])
    assert len(fields) <= MAX_FIELDS + 1  # the links field may follow
    for field in fields:
        assert field["title"] != "More", "a digest entry was hidden"
        assert utf16_length(field["title"]) <= FIELD_TITLE_LIMIT
        assert utf16_length(field["value"]) <= FIELD_VALUE_LIMIT


class TestDigestMessages:
    """What Slack is sent for a group's digest."""

    def test_a_hundred_held_alerts(self) -> None:
        """96 held stuck alerts make five messages of at most 20 fields, within every
        limit, naming each alert once; the body says what the digest stands for.
        """
        held = held_stuck_alerts(96)
        payloads = [render(digest) for digest in sample_digests(held)]
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
    @given(held=held_groups(), size=digest_sizes())
    def test_any_group_fits(self, held: list[Alert], size: int) -> None:
        """Whatever the job class, the alerts' titles and digest_size, every message fits
        Slack and every held alert is named in exactly one.
        """
        payloads = [render(digest) for digest in sample_digests(held, size=size)]
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
        clock = ManualClock(WINDOW_STARTED)
        settings_ = Settings(
            channels=("slack",),
            store_url="memory://",
            channel_sections={"slack": {"webhook_url": server.url_for("/services/T0/B0/x")}},
        )
        with Chaperone(
            settings_,
            clock=clock,
            store=MemoryStore(clock),
            plugins=PluginHost(entry_points=False, extra=[("slack", slack)]),
        ) as runtime:
            ids = raise_stuck_alerts(runtime, clock)
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
