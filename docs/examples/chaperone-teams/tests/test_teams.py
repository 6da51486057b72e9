"""The Teams channel passes the core's channel contract, against a double that answers as
Teams does, and delivers an alert to a real HTTP server on 127.0.0.1.
"""

# ruff: noqa: S101 - pytest states its checks with assert

from __future__ import annotations

import importlib.metadata
import json
from datetime import timedelta
from typing import Any

import chaperone_teams
import httpx
import hypothesis
import pytest
from chaperone_teams import PAYLOAD_LIMIT, TeamsChannel

import chaperone
from chaperone.store import MemoryStore
from chaperone.testing import ChannelContract, MockService, ServiceMode, assert_registered
from chaperone.testing.servers import RecordingServer, Reply

SIGNATURE = "Xk9fJ2mQ7rT4vW1zB8nC5dL3hP6sY0aE"  # made up for the tests
WEBHOOK = (
    "https://prod-42.westeurope.logic.azure.com:443/workflows/0f1e2d3c4b5a/triggers/manual"
    f"/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={SIGNATURE}"
)


def teams_ok(request: httpx.Request) -> httpx.Response:
    """Teams' answer to a message: 200 with "1"; 413 over its size limit, 400 for
    anything but an Adaptive Card.
    """
    if len(request.content) > PAYLOAD_LIMIT:
        return httpx.Response(413, text="Request Entity Too Large")
    [attachment] = json.loads(request.content)["attachments"]
    if attachment["content"]["type"] != "AdaptiveCard":
        return httpx.Response(400, text="Bad payload")
    return httpx.Response(200, text="1")


def teams_throttled(_request: httpx.Request) -> httpx.Response:
    """Teams throttling a webhook: 429 with Retry-After."""
    return httpx.Response(429, headers={"Retry-After": "2"}, text="Too Many Requests")


def teams_refuses(_request: httpx.Request) -> httpx.Response:
    """A classic connector's way to refuse: 200, with the real status in the text."""
    return httpx.Response(
        200,
        text="Webhook message delivery failed with error: Microsoft Teams endpoint "
        "returned HTTP error 413 with ContextId tcid=0,server=msgapi-production-weu-azsc2",
    )


class TestTeamsContract(ChannelContract):
    """The channel contract, for ``teams``."""

    channel_class = TeamsChannel
    plugin_name = "teams"

    def valid_settings(self) -> dict[str, Any]:
        """A Workflows webhook URL."""
        return {"webhook_url": WEBHOOK}

    def invalid_settings(self) -> list[tuple[dict[str, Any], str]]:
        """Missing, malformed or foreign URLs."""
        return [
            ({}, "webhook_url"),
            ({"webhook_url": "   "}, "webhook_url"),
            ({"webhook_url": WEBHOOK.replace("https://", "http://")}, "webhook_url"),
            ({"webhook_url": "https://example.com/webhookb2/abc"}, "webhook_url"),
            ({"webhook_url": "https://x.webhook.office.com.example.net/hook"}, "webhook_url"),
            ({"webhook_url": "https://x.webhook.office.com:99999/webhookb2/a"}, "webhook_url"),
            ({"webhook_url": "ftp://127.0.0.1/hook"}, "webhook_url"),
        ]

    def secrets(self) -> list[str]:
        """The webhook URL and the signature in it."""
        return [WEBHOOK, SIGNATURE]

    def hypothesis_settings(self) -> hypothesis.settings:
        """Fewer examples than hypothesis's 100, for a quick run (raise it in CI)."""
        return hypothesis.settings(super().hypothesis_settings(), max_examples=10)

    def make_service(self, mode: ServiceMode) -> MockService:
        """A double answering as Teams does."""
        return MockService(mode, ok=teams_ok, transient=teams_throttled, permanent=teams_refuses)

    def test_registered_through_entry_point(self) -> None:
        """Once installed (``pip install -e .``), the entry point provides the channel."""
        try:
            importlib.metadata.distribution("chaperone-teams")
        except importlib.metadata.PackageNotFoundError:
            pytest.skip("chaperone-teams is not installed")
        super().test_registered_through_entry_point()


class TestPluginModule:
    """The plugin module, registered the way the entry point registers it."""

    def test_module_registers_the_channel(self) -> None:
        """The module the entry point names registers ``teams``, installed or not."""
        host = chaperone.PluginHost(entry_points=False, extra=[("teams", chaperone_teams)])
        assert_registered(TeamsChannel, "teams", host)


class TestAgainstARealServer:
    """The channel inside a running Chaperone, posting to an HTTP server on 127.0.0.1."""

    def test_alert_is_posted_as_a_card_after_a_429(self) -> None:
        """A stuck job's alert reaches a real server: throttled once (429), then posted
        again after the Retry-After, with its title, colour, facts and both links.
        """
        throttled = Reply(status=429, headers={"Retry-After": "1"}, body="Too Many Requests")
        with RecordingServer([throttled], default=Reply(status=200, body="1")) as server:
            settings = chaperone.Settings(
                channels=("teams",),
                channel_sections={"teams": {"webhook_url": server.url_for("/webhookb2/a1")}},
                runbooks={"job_stuck": "https://docs.example.com/runbooks/job-stuck"},
                app_url="https://app.example.com",
            )
            clock = chaperone.ManualClock()  # the Retry-After passes without waiting
            host = chaperone.PluginHost(entry_points=False, extra=[("teams", chaperone_teams)])
            with chaperone.Chaperone(
                settings, clock=clock, store=MemoryStore(clock), plugins=host
            ) as runtime:
                report = runtime.dispatch(
                    chaperone.JobStuck(
                        supervision_id="550e8400-e29b-41d4-a716-446655440000",
                        job_class="App\\Jobs\\ProcessLargeDataset",
                        stuck_duration=timedelta(minutes=30),
                    )
                )
            requests = server.requests
        [sent] = report.alerts
        assert sent.delivered
        assert [result.attempts for result in sent.deliveries] == [2]
        assert len(requests) == 2
        assert clock.slept, "the Retry-After was not waited for"
        card = requests[-1].json()["attachments"][0]["content"]  # type: ignore[index]
        header = card["body"][0]
        assert header["style"] == "attention"
        assert header["items"][0]["text"] == "⚠️ Job Stuck: App\\Jobs\\ProcessLargeDataset"
        facts = {fact["title"]: fact["value"] for fact in card["body"][3]["facts"]}
        assert facts["Stuck Duration"] == "30 minutes"
        assert [(action["title"], action["url"]) for action in card["actions"]] == [
            (
                "View Job Details",
                "https://app.example.com/chaperone/jobs/550e8400-e29b-41d4-a716-446655440000",
            ),
            ("View Runbook", "https://docs.example.com/runbooks/job-stuck"),
        ]
