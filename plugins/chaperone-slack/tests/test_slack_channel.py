"""The ``slack`` channel against a double of Slack (``httpx.MockTransport``): what it
sends and how it reads each answer; and, through a runtime and a Slack double on
loopback, how the core holds a rate-limited webhook.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from chaperone_slack import SlackChannel, render

from chaperone import (
    Alert,
    Chaperone,
    ConfigError,
    ManualClock,
    OutcomeKind,
    PluginHost,
    SendContext,
    Settings,
)
from chaperone.channels import channel_settings
from chaperone.store import MemoryStore
from chaperone.testing.servers import RecordingServer, Reply

WEBHOOK = "https://hooks.slack.com/services/T0UNIT/B0UNIT/unitsecrettoken42"
OTHER_WEBHOOK = "https://hooks.slack.com/services/T0UNIT/B0OTHER/othersecrettoken"

Handler = Callable[[httpx.Request], httpx.Response]


def make_alert(key: str = "550e8400") -> Alert:
    """A job-stuck alert with incident key ``key``."""
    return Alert(
        type="job_stuck",
        key=key,
        headline="Job Stuck",
        title="Job Stuck: App\\Jobs\\ProcessLargeDataset",
        summary="A supervised job has been detected as stuck.",
        fields={"Supervision ID": key},
        job_class="App\\Jobs\\ProcessLargeDataset",
        occurred_at=datetime(2024, 1, 15, 10, 30, tzinfo=UTC),
    )


def build(url: str = WEBHOOK, clock: ManualClock | None = None) -> SlackChannel:
    """The channel for ``url``, its settings merged as at start-up."""
    settings = channel_settings(
        SlackChannel,
        app=Settings(channels=("slack",), channel_sections={"slack": {"webhook_url": url}}),
        store=MemoryStore(clock or ManualClock()),
        clock=clock or ManualClock(),
    )
    return SlackChannel.from_settings(settings)


class Slack:
    """A scripted Slack: answers from a list, then ``200 ok``; records every request."""

    def __init__(self, *answers: httpx.Response | Handler) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        """Record ``request`` and give the next answer."""
        self.requests.append(request)
        if not self.answers:
            return httpx.Response(200, text="ok")
        answer = self.answers.pop(0)
        return answer(request) if callable(answer) else answer


def send_all(
    slack: Slack,
    sends: list[tuple[SlackChannel, Alert]],
    clock: ManualClock,
    timeout: float = 10.0,
    between: Callable[[int], None] | None = None,
) -> list[Any]:
    """Send each (channel, alert) in turn through ``slack``; return the outcomes."""

    async def run() -> list[Any]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(slack)) as http:
            context = SendContext(http=http, clock=clock, timeout=timeout)
            outcomes = []
            for index, (channel, alert) in enumerate(sends):
                if between is not None:
                    between(index)
                outcomes.append(await channel.send(alert, context))
            return outcomes

    return asyncio.run(run())


class TestRequest:
    """What goes over the wire."""

    def test_posts_the_rendered_message_as_json(self) -> None:
        """One POST of ``render(alert)`` as JSON to the webhook URL, no channel field."""
        slack, clock = Slack(), ManualClock()
        alert = make_alert()
        (outcome,) = send_all(slack, [(build(), alert)], clock)
        assert outcome.kind is OutcomeKind.DELIVERED
        (request,) = slack.requests
        assert request.method == "POST"
        assert str(request.url) == WEBHOOK
        assert request.headers["content-type"] == "application/json"
        body = json.loads(request.content)
        assert body == render(alert)
        assert "channel" not in body

    def test_timeout_is_the_contexts(self) -> None:
        """The request carries the send's timeout; a timeout is transient."""
        seen: list[Any] = []

        def hang(request: httpx.Request) -> httpx.Response:
            seen.append(request.extensions["timeout"])
            raise httpx.ReadTimeout("no answer", request=request)

        (outcome,) = send_all(Slack(hang), [(build(), make_alert())], ManualClock(), timeout=3.5)
        assert outcome.kind is OutcomeKind.TRANSIENT
        assert seen == [{"connect": 3.5, "read": 3.5, "write": 3.5, "pool": 3.5}]


class TestAnswers:
    """Each answer Slack documents, classified."""

    @pytest.mark.parametrize(
        ("status", "body", "kind"),
        [
            (200, "ok", OutcomeKind.DELIVERED),
            (400, "invalid_payload", OutcomeKind.PERMANENT),
            (400, "user_not_found", OutcomeKind.PERMANENT),
            (403, "action_prohibited", OutcomeKind.PERMANENT),
            (404, "channel_not_found", OutcomeKind.PERMANENT),
            (410, "channel_is_archived", OutcomeKind.PERMANENT),
            (302, "", OutcomeKind.PERMANENT),
            (500, "rollup_error", OutcomeKind.TRANSIENT),
            (503, "", OutcomeKind.TRANSIENT),
            (429, "rate_limited", OutcomeKind.TRANSIENT),
        ],
    )
    def test_classification(self, status: int, body: str, kind: OutcomeKind) -> None:
        """2xx delivered; 429 and 5xx transient; other 4xx (and redirects) permanent."""
        slack = Slack(httpx.Response(status, text=body))
        (outcome,) = send_all(slack, [(build(), make_alert())], ManualClock())
        assert outcome.kind is kind
        assert outcome.status_code == status
        if kind is not OutcomeKind.DELIVERED:
            assert body in outcome.detail
        assert len(slack.requests) == 1

    def test_retry_after_is_read(self) -> None:
        """``429`` with ``Retry-After: 7`` asks the core to wait 7 seconds."""
        slack = Slack(httpx.Response(429, headers={"Retry-After": "7"}, text="rate_limited"))
        (outcome,) = send_all(slack, [(build(), make_alert())], ManualClock())
        assert outcome.retry_after == 7.0

    def test_429_without_retry_after_waits_a_second(self) -> None:
        """A ``429`` that names no wait is read as Slack's one message a second."""
        slack = Slack(httpx.Response(429, text="rate_limited"))
        (outcome,) = send_all(slack, [(build(), make_alert())], ManualClock())
        assert outcome.retry_after == 1.0

    def test_quoted_url_is_masked(self) -> None:
        """An error page quoting the webhook URL, or its token, does not put it in the detail."""
        body = f'{{"error": "invalid_payload", "url": "{WEBHOOK}", "token": "unitsecrettoken42"}}'
        slack = Slack(httpx.Response(400, text=body))
        (outcome,) = send_all(slack, [(build(), make_alert())], ManualClock())
        assert outcome.kind is OutcomeKind.PERMANENT
        assert "invalid_payload" in outcome.detail
        assert "unitsecrettoken42" not in outcome.detail
        assert "T0UNIT/B0UNIT" not in outcome.detail


def slack_runtime(url: str, clock: ManualClock, store: MemoryStore | None = None) -> Chaperone:
    """A runtime sending to the slack channel at ``url``, on ``store`` (shared by two
    runtimes as by two processes)."""
    import chaperone_slack

    return Chaperone(
        Settings(channels=("slack",), channel_sections={"slack": {"webhook_url": url}}),
        clock=clock,
        store=store or MemoryStore(clock),
        plugins=PluginHost(entry_points=False, extra=[("slack", chaperone_slack)]),
    )


class TestRateLimitHold:
    """After a 429, nothing goes to that webhook before Retry-After has passed.

    The hold is the core's (kept in the store, so every process and route posting to the
    webhook honours it); these tests go through a runtime to a Slack double on loopback.
    They replace the plugin's former in-process hold, which the core now does for all.
    """

    def test_other_alerts_wait_for_the_hold(self) -> None:
        """A long hold: the alert and the next one stay in the outbox, no request goes
        to Slack inside the window, and both are delivered once it has passed.
        """
        clock = ManualClock()
        rate_limited = Reply(status=429, headers={"Retry-After": "30"}, body="rate_limited")
        with (
            RecordingServer([rate_limited]) as server,
            slack_runtime(server.url_for("/services/T0/B0/held"), clock) as runtime,
        ):
            first = runtime.send(make_alert("a"))
            second = runtime.send(make_alert("b"))
            assert [r.status for r in first.deliveries + second.deliveries] == ["deferred"] * 2
            assert len(server.requests) == 1, "a request went to Slack inside the window"
            clock.advance(29)
            assert runtime.drain_outbox() == []
            clock.advance(1)
            drained = runtime.drain_outbox()
            for _ in range(3):  # the second alert waits a pace slot (1 a second) inline
                drained += runtime.drain_outbox()
        assert sorted(result.status for result in drained) == ["delivered", "delivered"]
        assert len(server.requests) == 3

    def test_a_short_hold_is_waited_out(self) -> None:
        """A hold of a couple of seconds is waited out on the clock, then the alert goes."""
        clock = ManualClock()
        rate_limited = Reply(status=429, headers={"Retry-After": "2"}, body="rate_limited")
        with (
            RecordingServer([rate_limited]) as server,
            slack_runtime(server.url_for("/services/T0/B0/short"), clock) as runtime,
        ):
            (result,) = runtime.send(make_alert()).deliveries
        assert (result.status, result.attempts) == ("delivered", 2)
        assert clock.slept == [pytest.approx(2.0)]
        assert len(server.requests) == 2

    def test_hold_is_shared_by_processes_on_one_webhook(self) -> None:
        """Another runtime on the same store (another process) posting to the same
        webhook is held too: it sends nothing.
        """
        clock = ManualClock()
        store = MemoryStore(clock)
        rate_limited = Reply(status=429, headers={"Retry-After": "60"}, body="rate_limited")
        with RecordingServer([rate_limited]) as server:
            url = server.url_for("/services/T0/B0/shared")
            with slack_runtime(url, clock, store) as one, slack_runtime(url, clock, store) as two:
                one.send(make_alert("a"))
                (result,) = two.send(make_alert("b")).deliveries
            store.close()
        assert result.status == "deferred"
        assert len(server.requests) == 1

    def test_other_webhooks_are_not_held(self) -> None:
        """A 429 from one webhook does not hold another."""
        clock = ManualClock()
        store = MemoryStore(clock)
        rate_limited = Reply(status=429, headers={"Retry-After": "60"}, body="rate_limited")
        with RecordingServer([rate_limited]) as server:
            held = server.url_for("/services/T0/B0/held")
            other = server.url_for("/services/T0/B0/other")
            with (
                slack_runtime(held, clock, store) as one,
                slack_runtime(other, clock, store) as two,
            ):
                one.send(make_alert("a"))
                (result,) = two.send(make_alert("b")).deliveries
            store.close()
        assert result.status == "delivered"
        assert [request.path for request in server.requests] == [
            "/services/T0/B0/held",
            "/services/T0/B0/other",
        ]

    def test_a_5xx_without_retry_after_does_not_hold_the_webhook(self) -> None:
        """A 500 naming no wait holds nothing: after it the next alert goes at once (a
        5xx that does give Retry-After holds the webhook like a 429, in the core).
        """
        clock = ManualClock()
        slack = Slack(httpx.Response(500, text="rollup_error"))
        channel = build(clock=clock)
        outcomes = send_all(slack, [(channel, make_alert()), (channel, make_alert())], clock)
        assert [outcome.kind for outcome in outcomes] == [
            OutcomeKind.TRANSIENT,
            OutcomeKind.DELIVERED,
        ]
        assert outcomes[0].retry_after is None
        assert clock.slept == []

    def test_the_channel_declares_slacks_rate(self) -> None:
        """The channel asks the core for Slack's documented one message a second per
        webhook.
        """
        assert SlackChannel.pace == (1, 1.0)


class TestSettings:
    """``webhook_url`` is validated at start-up."""

    @pytest.mark.parametrize(
        "url",
        [
            "https://hooks.slack.com/services/T0/B0/XXXX",
            "https://chat.example.test:8443/hooks/abc",
            "http://127.0.0.1:8080/hook",
            "http://localhost/hook",
            "http://[::1]:9000/hook",
        ],
    )
    def test_accepted(self, url: str) -> None:
        """Https anywhere, plain http on the loopback interface only."""
        assert isinstance(build(url), SlackChannel)

    @pytest.mark.parametrize(
        ("url", "message"),
        [
            ("http://hooks.slack.com/services/T0/B0/XXXX", "must use https://"),
            ("http://10.0.0.1/hook", "must use https://"),
            ("hooks.slack.com/services/T0/B0/XXXX", "absolute https:// URL"),
            ("https://hooks.slack.com/services/T0/B0/X X", "contains spaces"),
            ("https://hooks.slack.com:http/x", "not a valid URL"),
        ],
    )
    def test_refused(self, url: str, message: str) -> None:
        """Anything else is a ConfigError that names the setting, not its value."""
        with pytest.raises(ConfigError) as caught:
            build(url)
        text = str(caught.value)
        assert message in text
        assert "webhook_url" in text
        assert url not in text

    def test_repr_hides_the_url(self) -> None:
        """The channel's repr shows a mask, not the webhook."""
        channel = build()
        assert "unitsecrettoken42" not in repr(channel)
        assert "********" in repr(channel)
