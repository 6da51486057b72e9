"""The Discord channel against ``httpx.MockTransport``: where it posts, how it reads each
answer (and how long a 429 says to wait), and which webhook URLs it accepts; through a
runtime and a Discord double on loopback, how the core keeps off a rate limit Discord
announced.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from chaperone_discord import DiscordChannel, discord_retry_after, render
from hypothesis import given, settings
from hypothesis import strategies as st

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

TOKEN = "bm90LWEtcmVhbC10b2tlbg-xyz_123"  # noqa: S105 - made up for the tests
WEBHOOK = f"https://discord.com/api/webhooks/987654321/{TOKEN}"
NOW = datetime(2024, 1, 15, 10, 30, tzinfo=UTC)
ALERT = Alert(
    type="job_timeout",
    key="550e8400-e29b-41d4-a716-446655440000",
    headline="Job Timeout",
    title="Job Timeout: App\\Jobs\\GenerateMonthlyReport",
    summary="A supervised job has exceeded its timeout limit.",
    fields={"Timeout Limit": "300s", "Actual Duration": "350s"},
    occurred_at=NOW,
)

Handler = Callable[[httpx.Request], httpx.Response]


def build(values: Mapping[str, Any]) -> DiscordChannel:
    """The channel from ``values`` as its ``[channels.discord]`` table."""
    clock = ManualClock(NOW)
    store = MemoryStore(clock)
    try:
        app = Settings(
            channels=("discord",),
            channel_sections={"discord": dict(values)},
            config_file="chaperone.toml",
        )
        return DiscordChannel.from_settings(
            channel_settings(DiscordChannel, app=app, store=store, clock=clock)
        )
    finally:
        store.close()


class Discord:
    """A scripted Discord: answers with ``replies`` in turn (the last one repeats) and
    records every request; the channel sends through it on a manual clock.
    """

    def __init__(self, *replies: httpx.Response | Handler, url: str = WEBHOOK) -> None:
        self.replies = list(replies) or [httpx.Response(200, json={"id": "1"})]
        self.requests: list[httpx.Request] = []
        self.clock = ManualClock(NOW)
        self.channel = build({"webhook_url": url})

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        return reply(request) if callable(reply) else reply

    def send(self, *alerts: Alert, timeout: float = 10.0) -> list[Any]:
        """Send ``alerts`` one after another; return the outcomes."""

        async def run() -> list[Any]:
            async with httpx.AsyncClient(transport=httpx.MockTransport(self._handle)) as http:
                context = SendContext(http=http, clock=self.clock, timeout=timeout)
                return [await self.channel.send(alert, context) for alert in alerts]

        return asyncio.run(run())


def rate_limited(
    retry_after: Any = None, header: str | None = None, **extra: str
) -> httpx.Response:
    """A 429 as Discord sends it (each part optional)."""
    headers = dict(extra)
    if header is not None:
        headers["Retry-After"] = header
    body: dict[str, Any] = {"message": "You are being rate limited.", "global": False}
    if retry_after is not None:
        body["retry_after"] = retry_after
    return httpx.Response(429, headers=headers, json=body)


class TestRetryAfter:
    """How long a 429 says to wait, read defensively."""

    @pytest.mark.parametrize(
        ("response", "seconds"),
        [
            (rate_limited(0.6, "1"), 1.0),
            (rate_limited(2.5, "2"), 2.5),
            (rate_limited(0.25), 0.25),
            (rate_limited(header="3"), 3.0),
            (rate_limited(2000, "2"), 2.0),
            (rate_limited(2500.0), 2.5),
            (rate_limited("1.5"), 1.5),
            (rate_limited(-1, "2"), 2.0),
            (rate_limited(True, "2"), 2.0),
            (rate_limited("soon", "2"), 2.0),
            (rate_limited(None, None, **{"X-RateLimit-Reset-After": "1.5"}), 1.5),
            (rate_limited(900, "1"), 900.0),
            (rate_limited(header="86400"), 3600.0),
            (httpx.Response(429, headers={"Retry-After": "5"}, text="<html>slow</html>"), 5.0),
            (httpx.Response(429, content=b"\xff\xfe{"), None),
            (httpx.Response(429, json=[1, 2]), None),
            (rate_limited(), None),
        ],
    )
    def test_rule(self, response: httpx.Response, seconds: float | None) -> None:
        """The longer of body and header; a body over 1,000 is milliseconds (the header
        wins); the bucket's reset when neither says; never negative, never over an hour.
        """
        assert discord_retry_after(response) == seconds

    def test_nan_in_the_body_is_ignored(self) -> None:
        """A NaN ``retry_after`` (not valid JSON, but sent) is ignored."""
        response = httpx.Response(429, headers={"Retry-After": "2"}, text='{"retry_after": NaN}')
        assert discord_retry_after(response) == 2.0

    @settings(deadline=None, max_examples=60)
    @given(
        body=st.one_of(
            st.none(), st.floats(allow_nan=False, allow_infinity=False), st.integers(), st.text()
        ),
        header=st.one_of(st.none(), st.integers(min_value=0, max_value=10**6).map(str)),
    )
    def test_bounded(self, body: Any, header: str | None) -> None:
        """Whatever the 429 says, the wait is None or between 0 and an hour, and never
        shorter than a Retry-After header when the body is in seconds.
        """
        wait = discord_retry_after(rate_limited(body, header))
        if wait is None:
            assert header is None
            return
        assert 0 <= wait <= 3600
        if header is not None:
            assert wait >= min(float(header), 3600) or (
                isinstance(body, int | float) and body > 1000
            )


class TestSend:
    """What one send posts and how it classifies the answer."""

    def test_posts_the_rendered_embed_with_wait(self) -> None:
        """The message goes to the webhook URL with ``wait=true``, as JSON, within the
        send's timeout; 200 is delivered.
        """
        discord = Discord()
        (outcome,) = discord.send(ALERT, timeout=7.0)
        assert outcome.kind is OutcomeKind.DELIVERED
        assert outcome.status_code == 200
        (request,) = discord.requests
        assert request.method == "POST"
        assert str(request.url) == WEBHOOK + "?wait=true"
        assert request.headers["Content-Type"] == "application/json"
        assert json.loads(request.content) == render(ALERT)
        assert request.extensions["timeout"]["read"] == 7.0

    def test_keeps_the_thread_id(self) -> None:
        """A ``thread_id`` in the webhook URL (a forum channel's thread) is kept."""
        discord = Discord(url=WEBHOOK + "?thread_id=42&wait=false")
        discord.send(ALERT)
        assert discord.requests[0].url.params.multi_items() == [
            ("thread_id", "42"),
            ("wait", "true"),
        ]

    def test_204_is_delivered(self) -> None:
        """Discord's 204 (no message back) is a delivery too."""
        (outcome,) = Discord(httpx.Response(204)).send(ALERT)
        assert outcome.kind is OutcomeKind.DELIVERED

    @pytest.mark.parametrize(
        ("status", "body"),
        [
            (400, {"message": "Invalid Form Body", "code": 50035}),
            (401, {"message": "Invalid Webhook Token", "code": 50027}),
            (403, {"message": "Missing Access", "code": 50001}),
            (404, {"message": "Unknown Webhook", "code": 10015}),
            (413, {"message": "Request entity too large", "code": 40005}),
        ],
    )
    def test_client_errors_are_permanent(self, status: int, body: dict[str, Any]) -> None:
        """400, 401, 403, 404, 413: permanent, never retried, Discord's message in the
        detail.
        """
        (outcome,) = Discord(httpx.Response(status, json=body)).send(ALERT)
        assert outcome.kind is OutcomeKind.PERMANENT
        assert outcome.status_code == status
        assert body["message"] in outcome.detail

    @pytest.mark.parametrize("status", [500, 502, 503, 504])
    def test_server_errors_are_transient(self, status: int) -> None:
        """5xx: transient."""
        (outcome,) = Discord(httpx.Response(status, text="bad gateway")).send(ALERT)
        assert outcome.kind is OutcomeKind.TRANSIENT

    def test_429_is_transient_with_its_wait(self) -> None:
        """429: transient, after the wait the response asks for."""
        (outcome,) = Discord(rate_limited(1.7, "2")).send(ALERT)
        assert outcome.kind is OutcomeKind.TRANSIENT
        assert outcome.status_code == 429
        assert outcome.retry_after == 2.0

    def test_429_in_milliseconds(self) -> None:
        """A 429 whose body says 2000 and header 2 waits 2 seconds, not 2000."""
        (outcome,) = Discord(rate_limited(2000, "2")).send(ALERT)
        assert outcome.retry_after == 2.0

    @pytest.mark.parametrize("error", [httpx.ConnectError, httpx.ReadTimeout])
    def test_no_answer_is_transient_and_secret_free(
        self, error: type[httpx.TransportError]
    ) -> None:
        """A refused connection or a timeout is transient; the detail has no URL, even
        when the exception's message has it.
        """

        def fail(request: httpx.Request) -> httpx.Response:
            raise error(f"no answer from {request.url}", request=request)

        (outcome,) = Discord(fail).send(ALERT)
        assert outcome.kind is OutcomeKind.TRANSIENT
        assert TOKEN not in outcome.detail
        assert "discord.com" not in outcome.detail

    def test_repr_hides_the_url(self) -> None:
        """The channel's repr and str show no part of the webhook URL."""
        channel = build({"webhook_url": WEBHOOK, "username": "Chaperone"})
        for text in (repr(channel), str(channel)):
            assert TOKEN not in text
            assert "987654321" not in text
        assert "Chaperone" in repr(channel)


def discord_runtime(url: str, clock: ManualClock) -> Chaperone:
    """A runtime sending to the discord channel at ``url`` (on loopback)."""
    import chaperone_discord

    return Chaperone(
        Settings(channels=("discord",), channel_sections={"discord": {"webhook_url": url}}),
        clock=clock,
        store=MemoryStore(clock),
        plugins=PluginHost(entry_points=False, extra=[("discord", chaperone_discord)]),
    )


LOOPBACK_HOOK = "/api/webhooks/987654321/loopback-token"


class TestKeepsOffRateLimits:
    """A rate limit Discord announced is waited out, not run into.

    The channel hands the wait Discord asks for to the core (the outcome's
    ``retry_after``); the core holds the webhook that long across processes. These tests
    go through a runtime to a Discord double on loopback (they replace the channel's
    former in-process wait, which the core now does for every channel).
    """

    def test_short_wait_after_429_is_taken_before_the_next_send(self) -> None:
        """After a 429 asking for 2 s, the retry waits the 2 s first, then posts."""
        clock = ManualClock(NOW)
        limited = Reply(
            status=429,
            headers={"Retry-After": "2", "Content-Type": "application/json"},
            body=json.dumps({"message": "slow down", "retry_after": 2.0, "global": False}),
        )
        with (
            RecordingServer([limited]) as server,
            discord_runtime(server.url_for(LOOPBACK_HOOK), clock) as runtime,
        ):
            (result,) = runtime.send(ALERT).deliveries
        assert (result.status, result.attempts) == ("delivered", 2)
        assert clock.slept == [pytest.approx(2.0)]
        assert len(server.requests) == 2

    def test_long_wait_keeps_the_alerts_in_the_outbox(self) -> None:
        """After a 429 asking for 30 s, the alert and the next one wait in the outbox,
        nothing is posted meanwhile, and once the 30 s have passed both go.
        """
        clock = ManualClock(NOW)
        limited = Reply(status=429, headers={"Retry-After": "30"}, body="{}")
        with (
            RecordingServer([limited]) as server,
            discord_runtime(server.url_for(LOOPBACK_HOOK), clock) as runtime,
        ):
            # is_test: the same alert twice, past the rate-limit filter.
            first = runtime.send(ALERT, is_test=True)
            second = runtime.send(ALERT, is_test=True)
            assert [r.status for r in first.deliveries + second.deliveries] == ["deferred"] * 2
            assert len(server.requests) == 1
            clock.advance(29.9)
            assert runtime.drain_outbox() == []
            clock.advance(0.1)
            drained = runtime.drain_outbox()
        assert [result.status for result in drained] == ["delivered", "delivered"]
        assert len(server.requests) == 3

    def test_empty_bucket_is_waited_for(self) -> None:
        """A delivery that used the bucket up (``X-RateLimit-Remaining: 0``) carries
        ``X-RateLimit-Reset-After`` as its wait, and the next send waits it first.
        """
        used_up = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": "1.5"}
        (outcome,) = Discord(httpx.Response(200, headers=used_up, json={})).send(ALERT)
        assert outcome.kind is OutcomeKind.DELIVERED
        assert outcome.retry_after == 1.5
        clock = ManualClock(NOW)
        with (
            RecordingServer([Reply(headers=used_up)]) as server,
            discord_runtime(server.url_for(LOOPBACK_HOOK), clock) as runtime,
        ):
            reports = [runtime.send(ALERT, is_test=True) for _ in range(3)]
        assert all(report.delivered for report in reports)
        assert clock.slept == [1.5]
        assert len(server.requests) == 3

    def test_bucket_with_room_is_not_waited_for(self) -> None:
        """``X-RateLimit-Remaining: 4``: no wait."""
        room = httpx.Response(
            200, headers={"X-RateLimit-Remaining": "4", "X-RateLimit-Reset-After": "1.5"}
        )
        discord = Discord(room)
        outcomes = discord.send(ALERT, ALERT)
        assert [outcome.retry_after for outcome in outcomes] == [None, None]
        assert discord.clock.slept == []


class TestSettings:
    """Which settings build a channel."""

    @pytest.mark.parametrize(
        "url",
        [
            WEBHOOK,
            f"https://discordapp.com/api/webhooks/1/{TOKEN}",
            f"https://ptb.discord.com/api/webhooks/1/{TOKEN}",
            f"https://canary.discord.com/api/v10/webhooks/1/{TOKEN}/",
            f"https://discord.com/api/webhooks/1/{TOKEN}?thread_id=5",
            f"  {WEBHOOK}  ",
            "http://127.0.0.1:8080/api/webhooks/1/token",
            "http://localhost/any/path",
            "http://[::1]:9000/hook",
        ],
    )
    def test_accepted_webhook_urls(self, url: str) -> None:
        """Discord's hosts with a webhook path, or any http URL on the loopback."""
        assert isinstance(build({"webhook_url": url}), DiscordChannel)

    def test_username_and_avatar_go_on_every_message(self) -> None:
        """A username and avatar set once are on the message."""
        discord = Discord()
        discord.channel = build(
            {"webhook_url": WEBHOOK, "username": " Chaperone ", "avatar_url": "https://a.test/a"}
        )
        discord.send(ALERT)
        body = json.loads(discord.requests[0].content)
        assert (body["username"], body["avatar_url"]) == ("Chaperone", "https://a.test/a")

    def test_bad_url_error_names_the_setting_not_the_value(self) -> None:
        """A malformed URL's ConfigError names the setting and says what is expected,
        quoting nothing of the value.
        """
        with pytest.raises(ConfigError) as caught:
            build({"webhook_url": f"https://discord.com/api/hooks/1/{TOKEN}"})
        message = str(caught.value)
        assert "channels.discord.webhook_url" in message
        assert "must be a Discord webhook URL: https://discord.com/api/webhooks/ then" in message
        assert TOKEN not in message
