"""The core's channel contract, run against the ``slack`` channel."""

from __future__ import annotations

from typing import Any

import httpx
from chaperone_slack import SlackChannel

from chaperone.testing import ChannelContract, MockService, ServiceMode

WEBHOOK = "https://hooks.slack.com/services/T0CONTRACT/B0CONTRACT/contractsecret123"


def _ok(_request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, text="ok")


def _rollup_error(_request: httpx.Request) -> httpx.Response:
    return httpx.Response(500, text="rollup_error")


def _channel_not_found(_request: httpx.Request) -> httpx.Response:
    return httpx.Response(404, text="channel_not_found")


class TestSlackContract(ChannelContract):
    """The contract suite, with a double that answers as Slack does."""

    channel_class = SlackChannel
    plugin_name = "slack"

    def valid_settings(self) -> dict[str, Any]:
        """A webhook URL of Slack's shape."""
        return {"webhook_url": WEBHOOK}

    def invalid_settings(self) -> list[tuple[dict[str, Any], str]]:
        """Missing, malformed, plain-http and odd-scheme webhook URLs."""
        return [
            ({}, "webhook_url"),
            ({"webhook_url": "   "}, "webhook_url"),
            ({"webhook_url": "not a url"}, "webhook_url"),
            ({"webhook_url": "hooks.slack.com/services/T0/B0/relativesecret"}, "webhook_url"),
            ({"webhook_url": "http://hooks.slack.com/services/T0/B0/plainsecret"}, "webhook_url"),
            ({"webhook_url": "ftp://hooks.slack.com/services/T0/B0/ftpsecret"}, "webhook_url"),
            ({"webhook_url": "https://hooks.slack.com:99999/services/x"}, "webhook_url"),
            ({"webhook_url": "https://[::1/services/bracketsecret"}, "webhook_url"),
        ]

    def secrets(self) -> list[str]:
        """The webhook URL is the secret."""
        return [WEBHOOK]

    def make_service(self, mode: ServiceMode) -> MockService:
        """Answer ``ok``, ``500 rollup_error`` or ``404 channel_not_found``, as Slack does."""
        return MockService(mode, ok=_ok, transient=_rollup_error, permanent=_channel_not_found)
