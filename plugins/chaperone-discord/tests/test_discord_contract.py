"""The core's channel contract, run against the Discord channel and a double that answers
as Discord does: ``200`` with the message for a payload within every limit (``400
Invalid Form Body`` otherwise), ``429`` with a JSON ``retry_after`` when rate limited,
``400`` when it refuses.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import hypothesis
from chaperone_discord import DiscordChannel
from chaperone_discord._limits import limit_problems

from chaperone.testing import ChannelContract, MockService, ServiceMode

TOKEN = "dGhpcyBpcyBub3QgYSByZWFsIHRva2Vu-abc_DEF"  # noqa: S105 - made up for the tests
WEBHOOK = f"https://discord.com/api/webhooks/112233445566778899/{TOKEN}"


def discord_ok(request: httpx.Request) -> httpx.Response:
    """Discord's answer to a message: the message (``wait=true``) or 204; a payload over
    any limit gets ``400 Invalid Form Body`` naming the problems, as Discord rejects it.
    """
    payload = json.loads(request.content)
    problems = limit_problems(payload)
    if problems:
        body = {"message": "Invalid Form Body", "code": 50035, "errors": problems}
        return httpx.Response(400, json=body)
    if request.url.params.get("wait") != "true":
        return httpx.Response(204)
    return httpx.Response(200, json={"id": "1", "type": 0, "embeds": payload["embeds"]})


def discord_rate_limited(_request: httpx.Request) -> httpx.Response:
    """Discord's 429: retry_after in the body (seconds) and the header."""
    return httpx.Response(
        429,
        headers={"Retry-After": "1", "X-RateLimit-Scope": "user"},
        json={"message": "You are being rate limited.", "retry_after": 0.6, "global": False},
    )


def discord_refuses(_request: httpx.Request) -> httpx.Response:
    """Discord's answer to a webhook that was deleted."""
    return httpx.Response(404, json={"message": "Unknown Webhook", "code": 10015})


class TestDiscordContract(ChannelContract):
    """The channel contract, for ``discord``."""

    channel_class = DiscordChannel
    plugin_name = "discord"

    def valid_settings(self) -> dict[str, Any]:
        """A Discord webhook URL, a username and an avatar."""
        return {
            "webhook_url": WEBHOOK,
            "username": "Chaperone",
            "avatar_url": "https://example.test/avatar.png",
        }

    def invalid_settings(self) -> list[tuple[dict[str, Any], str]]:
        """Missing or malformed webhook URLs, and a username Discord refuses."""
        return [
            ({}, "webhook_url"),
            ({"webhook_url": "   "}, "webhook_url"),
            ({"webhook_url": f"http://discord.com/api/webhooks/1/{TOKEN}"}, "webhook_url"),
            ({"webhook_url": f"https://discord.com/api/webhooks/x/{TOKEN}"}, "webhook_url"),
            ({"webhook_url": f"https://example.com/api/webhooks/1/{TOKEN}"}, "webhook_url"),
            ({"webhook_url": f"https://discord.com.x.test/api/webhooks/1/{TOKEN}"}, "webhook_url"),
            ({"webhook_url": f"https://discord.com/webhooks/1/{TOKEN}"}, "webhook_url"),
            ({"webhook_url": f"https://discord.com:99999/api/webhooks/1/{TOKEN}"}, "webhook_url"),
            ({"webhook_url": f"hooks.discord.com/{TOKEN}"}, "webhook_url"),
            ({"webhook_url": f"ftp://127.0.0.1/{TOKEN}"}, "webhook_url"),
            ({"webhook_url": WEBHOOK, "username": "x" * 81}, "username"),
            ({"webhook_url": WEBHOOK, "username": "My Discord Bot"}, "username"),
            ({"webhook_url": WEBHOOK, "username": "clyde"}, "username"),
            ({"webhook_url": WEBHOOK, "avatar_url": "avatar.png"}, "avatar_url"),
        ]

    def secrets(self) -> list[str]:
        """The webhook URL and the token in it."""
        return [WEBHOOK, TOKEN]

    def hypothesis_settings(self) -> hypothesis.settings:
        """The suite's settings, with fewer examples: the render tests draw many more."""
        return hypothesis.settings(super().hypothesis_settings(), max_examples=40)

    def make_service(self, mode: ServiceMode) -> MockService:
        """A double answering as Discord does."""
        return MockService(
            mode, ok=discord_ok, transient=discord_rate_limited, permanent=discord_refuses
        )


class TestDoubleIsStrict:
    """The double above rejects what Discord rejects, so the contract's delivered alerts
    prove the payload was within the limits.
    """

    def test_oversized_payload_is_refused(self) -> None:
        """A message over the 6,000 characters gets 400."""
        embeds = [{"description": "x" * 4000}, {"description": "y" * 4000}]
        request = httpx.Request(
            "POST", WEBHOOK + "?wait=true", content=json.dumps({"embeds": embeds}).encode()
        )
        response = discord_ok(request)
        assert response.status_code == 400
        assert "over 6000" in response.text

    def test_valid_payload_without_wait_gets_204(self) -> None:
        """Without wait=true Discord answers 204 with no body."""
        request = httpx.Request(
            "POST", WEBHOOK, content=json.dumps({"embeds": [{"title": "t"}]}).encode()
        )
        assert discord_ok(request).status_code == 204
