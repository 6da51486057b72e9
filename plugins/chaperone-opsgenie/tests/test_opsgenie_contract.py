"""The core's channel contract, run against the ``opsgenie`` channel, with a service
double that answers as Opsgenie does.
"""

from __future__ import annotations

from typing import Any

import httpx
from chaperone_opsgenie import OpsgenieChannel

from chaperone.testing import ChannelContract, MockService, ServiceMode

API_KEY = "6c3e0f5a-9b1d-4c2e-8f7a-2d4b6e8a0c13"
OTHER_KEY = "0f1e2d3c-4b5a-6978-8695-a4b3c2d1e0f9"


def opsgenie_answer(status: int, **extra: Any) -> httpx.Response:
    """A response shaped like Opsgenie's: JSON with ``took`` and ``requestId``."""
    body = {"took": 0.003, "requestId": "43a29c5c-3dbf-4fa4-9c26-f4f71023e120", **extra}
    return httpx.Response(status, json=body)


def accepted(_request: httpx.Request) -> httpx.Response:
    """Opsgenie's ``202 Request will be processed``."""
    return opsgenie_answer(202, result="Request will be processed")


def throttled(_request: httpx.Request) -> httpx.Response:
    """Opsgenie's ``429``: rate-limit headers, no Retry-After."""
    response = opsgenie_answer(429, message="You are making too many requests!")
    response.headers.update(
        {
            "X-RateLimit-State": "THROTTLED",
            "X-RateLimit-Reason": "INTEGRATION",
            "X-RateLimit-Period-In-Sec": "60",
        }
    )
    return response


def unprocessable(_request: httpx.Request) -> httpx.Response:
    """Opsgenie's ``422`` for a request it cannot process."""
    return opsgenie_answer(422, message="Request body is not processable.")


class TestOpsgenieChannelContract(ChannelContract):
    """Every contract test, against Opsgenie's answers (202, 429, 422)."""

    channel_class = OpsgenieChannel
    plugin_name = "opsgenie"

    def valid_settings(self) -> dict[str, Any]:
        """An integration key and one extra tag."""
        return {"api_key": API_KEY, "tags": ["team-payments"]}

    def invalid_settings(self) -> list[tuple[dict[str, Any], str]]:
        """Missing or malformed keys, an unknown region, bad base URLs, bad tags."""
        return [
            ({}, "api_key"),
            ({"api_key": "   "}, "api_key"),
            ({"api_key": "too-short-key"}, "api_key"),
            ({"api_key": "a" * 513}, "api_key"),
            ({"api_key": f"GenieKey {OTHER_KEY}"}, "api_key"),
            ({"api_key": f"{OTHER_KEY} {OTHER_KEY}"}, "api_key"),
            ({"api_key": "ключ-для-опсджини-и-ещё"}, "api_key"),
            ({"api_key": API_KEY, "region": "asia"}, "region"),
            ({"api_key": API_KEY, "api_url": "not a url"}, "api_url"),
            ({"api_key": API_KEY, "api_url": "https://api.opsgenie.com:port"}, "api_url"),
            ({"api_key": API_KEY, "api_url": "ftp://api.opsgenie.com"}, "api_url"),
            ({"api_key": API_KEY, "api_url": "http://api.opsgenie.com"}, "api_url"),
            ({"api_key": API_KEY, "api_url": f"https://u:{OTHER_KEY}@api.opsgenie.com"}, "api_url"),
            ({"api_key": API_KEY, "api_url": "https://api.opsgenie.com/?a=1"}, "api_url"),
            ({"api_key": API_KEY, "tags": "has space"}, "tags"),
            ({"api_key": API_KEY, "tags": "x" * 51}, "tags"),
            ({"api_key": API_KEY, "tags": ",".join(f"t{n}" for n in range(17))}, "tags"),
            ({"api_key": API_KEY, "tags": 5}, "tags"),
        ]

    def secrets(self) -> list[str]:
        """The API key."""
        return [API_KEY]

    def make_service(self, mode: ServiceMode) -> MockService:
        """A double answering 202, 429 or 422 with Opsgenie's JSON."""
        return MockService(mode, ok=accepted, transient=throttled, permanent=unprocessable)
