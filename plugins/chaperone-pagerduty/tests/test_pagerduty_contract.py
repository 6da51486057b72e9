"""The channel contract for ``pagerduty``, and what the channel does with PagerDuty's
answers (through ``httpx.MockTransport``: nothing leaves the process).
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from chaperone_pagerduty import PagerDutyChannel

from chaperone import Alert, ConfigError, ManualClock, OutcomeKind, Secret, SendContext, Settings
from chaperone.channels import channel_settings
from chaperone.store import MemoryStore
from chaperone.testing import ChannelContract, MockService, ServiceMode, find_secrets

ROUTING_KEY = "pdRoutingKey4ChaperoneTests0042Z"  # a made-up key the tests hunt for
EVENTS_URL = "https://events.pagerduty.test/v2/enqueue"


def _accepted(request: httpx.Request) -> httpx.Response:
    dedup_key = json.loads(request.content)["dedup_key"]
    body = {"status": "success", "message": "Event processed", "dedup_key": dedup_key}
    return httpx.Response(202, json=body)


def _throttled(_request: httpx.Request) -> httpx.Response:
    return httpx.Response(429, headers={"Retry-After": "3"}, text="")


def _rejected_quoting_body(request: httpx.Request) -> httpx.Response:
    # PagerDuty does not quote the event back; a careless proxy might, key included.
    return httpx.Response(400, text=f"invalid event: {request.content.decode()}")


def pagerduty_service(mode: ServiceMode | str = ServiceMode.OK) -> MockService:
    """A double answering as PagerDuty does: 202 JSON, 429 with Retry-After, or a 400 that
    quotes the request back.
    """
    return MockService(mode, ok=_accepted, transient=_throttled, permanent=_rejected_quoting_body)


def _alert(**changes: Any) -> Alert:
    values: dict[str, Any] = {
        "type": "job_stuck",
        "key": "550e8400-e29b-41d4-a716-446655440000",
        "headline": "Job Stuck",
        "title": "Job Stuck: App\\Jobs\\ProcessLargeDataset",
        "summary": "A supervised job has been detected as stuck and may require intervention.",
        "fields": {"Job Class": "App\\Jobs\\ProcessLargeDataset"},
        "job_class": "App\\Jobs\\ProcessLargeDataset",
        "occurred_at": datetime(2024, 1, 15, 10, 30, tzinfo=UTC),
    }
    values.update(changes)
    return Alert(**values)


def _send(alert: Alert, handler: Any, timeout: float = 10.0) -> Any:
    async def run() -> Any:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            channel = PagerDutyChannel(Secret(ROUTING_KEY), EVENTS_URL)
            context = SendContext(http=client, clock=ManualClock(), timeout=timeout)
            return await channel.send(alert, context)

    return asyncio.run(run())


class TestPagerDutyChannelContract(ChannelContract):
    """The contract every channel passes, against a PagerDuty double."""

    channel_class = PagerDutyChannel
    plugin_name = "pagerduty"

    def valid_settings(self) -> dict[str, Any]:
        """A working key, and a URL that is not PagerDuty's."""
        return {"routing_key": ROUTING_KEY, "events_url": EVENTS_URL}

    def invalid_settings(self) -> list[tuple[dict[str, Any], str]]:
        """Malformed keys (length, characters) and URLs, each with the key to name."""
        return [
            ({}, "routing_key"),
            ({"routing_key": "   "}, "routing_key"),
            ({"routing_key": ROUTING_KEY[:31]}, "routing_key"),
            ({"routing_key": ROUTING_KEY + "9"}, "routing_key"),
            ({"routing_key": ROUTING_KEY[:31] + "-"}, "routing_key"),
            ({"routing_key": ROUTING_KEY[:30] + "ü1"}, "routing_key"),
            ({"routing_key": ROUTING_KEY, "events_url": "events.pagerduty.com"}, "events_url"),
            ({"routing_key": ROUTING_KEY, "events_url": "ftp://pagerduty.test/"}, "events_url"),
            ({"routing_key": ROUTING_KEY, "events_url": "http://:80/x"}, "events_url"),
            ({"routing_key": ROUTING_KEY, "events_url": "http://h:99999/x"}, "events_url"),
            ({"routing_key": ROUTING_KEY, "events_url": "http://h/a b"}, "events_url"),
        ]

    def secrets(self) -> list[str]:
        """The routing key."""
        return [ROUTING_KEY]

    def make_service(self, mode: ServiceMode) -> MockService:
        """A double that answers as PagerDuty does."""
        return pagerduty_service(mode)


class TestSettings:
    """What the channel makes of its settings."""

    def test_events_url_defaults_to_pagerduty(self) -> None:
        """Without ``events_url`` the channel posts to PagerDuty's enqueue endpoint."""
        contract = TestPagerDutyChannelContract()
        channel = PagerDutyChannel.from_settings(
            contract.build_settings({"routing_key": ROUTING_KEY})
        )
        seen: list[str] = []

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(str(request.url))
            return _accepted(request)

        async def run() -> None:
            async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
                await channel.send(
                    _alert(), SendContext(http=client, clock=ManualClock(), timeout=5)
                )

        asyncio.run(run())
        assert seen == ["https://events.pagerduty.com/v2/enqueue"]

    def test_routing_key_error_names_the_variable_not_the_key(self) -> None:
        """A malformed key from the environment is reported by its variable, unquoted."""
        bad = ROUTING_KEY[:20] + "!" * 12
        settings = channel_settings(
            PagerDutyChannel,
            app=Settings(channels=("pagerduty",), environ={"CHAPERONE_PAGERDUTY_ROUTING_KEY": bad}),
            store=MemoryStore(ManualClock()),
            clock=ManualClock(),
        )
        with pytest.raises(ConfigError, match="CHAPERONE_PAGERDUTY_ROUTING_KEY") as caught:
            PagerDutyChannel.from_settings(settings)
        assert not find_secrets(caught.value, [bad, ROUTING_KEY[:20]])
        assert "letters and digits" in str(caught.value)

    def test_repr_shows_the_url_but_not_the_key(self) -> None:
        """The channel's repr names its endpoint and masks the key."""
        text = repr(PagerDutyChannel(Secret(ROUTING_KEY), EVENTS_URL))
        assert EVENTS_URL in text
        assert ROUTING_KEY not in text


class TestRequests:
    """The requests the channel makes."""

    def test_trigger_is_posted_as_json_to_the_events_url(self) -> None:
        """A firing alert goes as one JSON ``trigger`` event with the routing key."""
        requests: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            requests.append(request)
            return _accepted(request)

        outcome = _send(_alert(), handler)
        assert outcome.kind is OutcomeKind.DELIVERED
        assert outcome.status_code == 202
        assert "trigger" in outcome.detail
        [request] = requests
        assert request.method == "POST"
        assert str(request.url) == EVENTS_URL
        assert request.headers["content-type"] == "application/json"
        event = json.loads(request.content)
        assert event["routing_key"] == ROUTING_KEY
        assert event["event_action"] == "trigger"
        assert event["dedup_key"] == "job_stuck:550e8400-e29b-41d4-a716-446655440000"

    def test_resolved_alert_posts_resolve_with_the_trigger_dedup_key(self) -> None:
        """The resolution of an alert is a bare ``resolve`` with the trigger's dedup_key."""
        events: list[dict[str, Any]] = []

        def handler(request: httpx.Request) -> httpx.Response:
            events.append(json.loads(request.content))
            return _accepted(request)

        _send(_alert(), handler)
        outcome = _send(_alert(status="resolved", severity="info", title="Job Recovered"), handler)
        assert outcome.ok
        assert "resolve" in outcome.detail
        trigger, resolve = events
        assert resolve == {
            "routing_key": ROUTING_KEY,
            "event_action": "resolve",
            "dedup_key": trigger["dedup_key"],
        }

    def test_acknowledged_alert_posts_acknowledge_with_the_trigger_dedup_key(self) -> None:
        """An acknowledgement is a bare ``acknowledge`` with the trigger's dedup_key."""
        events: list[dict[str, Any]] = []

        def handler(request: httpx.Request) -> httpx.Response:
            events.append(json.loads(request.content))
            return _accepted(request)

        _send(_alert(), handler)
        outcome = _send(_alert(status="acknowledged"), handler)
        assert outcome.ok
        assert "acknowledge" in outcome.detail
        trigger, acknowledge = events
        assert acknowledge == {
            "routing_key": ROUTING_KEY,
            "event_action": "acknowledge",
            "dedup_key": trigger["dedup_key"],
        }

    def test_an_undo_is_refused_without_a_request(self) -> None:
        """The Events API has no undo: the channel opts out of it, and one sent anyway
        fails for good without reaching PagerDuty.
        """
        requests: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            requests.append(request)
            return _accepted(request)

        assert PagerDutyChannel.accepts_acknowledgements
        assert not PagerDutyChannel.accepts_unacknowledgements
        outcome = _send(_alert(status="unacknowledged"), handler)
        assert outcome.kind is OutcomeKind.PERMANENT
        assert "no unacknowledged event" in outcome.detail
        assert requests == []

    def test_send_respects_the_context_timeout(self) -> None:
        """The request carries the context's timeout."""
        timeouts: list[Any] = []

        def handler(request: httpx.Request) -> httpx.Response:
            timeouts.append(request.extensions["timeout"])
            return _accepted(request)

        _send(_alert(), handler, timeout=2.5)
        assert timeouts == [{"connect": 2.5, "read": 2.5, "write": 2.5, "pool": 2.5}]


class TestOutcomes:
    """How PagerDuty's answers are classified."""

    @pytest.mark.parametrize(
        ("status", "kind"),
        [
            (202, OutcomeKind.DELIVERED),
            (400, OutcomeKind.PERMANENT),
            (401, OutcomeKind.PERMANENT),
            (403, OutcomeKind.PERMANENT),
            (404, OutcomeKind.PERMANENT),
            (413, OutcomeKind.PERMANENT),
            (429, OutcomeKind.TRANSIENT),
            (500, OutcomeKind.TRANSIENT),
            (502, OutcomeKind.TRANSIENT),
            (503, OutcomeKind.TRANSIENT),
        ],
    )
    def test_status_codes(self, status: int, kind: OutcomeKind) -> None:
        """2xx is delivered, 429 and 5xx transient, other 4xx permanent."""
        outcome = _send(_alert(), lambda _request: httpx.Response(status, text="{}"))
        assert outcome.kind is kind
        assert outcome.status_code == status

    def test_retry_after_is_honoured(self) -> None:
        """A 429's Retry-After becomes the outcome's retry_after."""
        outcome = _send(
            _alert(), lambda _r: httpx.Response(429, headers={"Retry-After": "2"}, text="")
        )
        assert outcome.kind is OutcomeKind.TRANSIENT
        assert outcome.retry_after == 2.0

    def test_invalid_event_detail_quotes_pagerduty(self) -> None:
        """A 400's detail carries PagerDuty's explanation."""
        body = {
            "status": "invalid event",
            "message": "Event object is invalid",
            "errors": ["'payload.summary' is missing or blank"],
        }
        outcome = _send(_alert(), lambda _r: httpx.Response(400, json=body))
        assert outcome.kind is OutcomeKind.PERMANENT
        assert outcome.detail.startswith("HTTP 400: ")
        assert "Event object is invalid" in outcome.detail

    @pytest.mark.parametrize(
        "quote",
        [
            ROUTING_KEY,
            ROUTING_KEY[:12],
            ROUTING_KEY[-9:],
            ROUTING_KEY[5:20],
            f'{{"routing_key":"{ROUTING_KEY}"}}',
            "x" * 180 + ROUTING_KEY,
            "x" * 190 + ROUTING_KEY,
        ],
    )
    def test_a_quoted_key_is_masked(self, quote: str) -> None:
        """A server quoting the key, whole or a piece of it, never gets it into the detail."""
        outcome = _send(_alert(), lambda _r: httpx.Response(400, text=quote))
        assert outcome.kind is OutcomeKind.PERMANENT
        assert "********" in outcome.detail
        assert not find_secrets(outcome.detail, [ROUTING_KEY[i : i + 8] for i in range(25)])

    def test_timeout_is_transient(self) -> None:
        """No answer in time is a transient failure."""

        def handler(request: httpx.Request) -> httpx.Response:
            raise httpx.ReadTimeout("timed out", request=request)

        outcome = _send(_alert(), handler, timeout=1.5)
        assert outcome.kind is OutcomeKind.TRANSIENT
        assert "1.5s" in outcome.detail

    def test_refused_connection_is_transient(self) -> None:
        """A refused connection is a transient failure that does not name the URL."""

        def handler(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("connection refused", request=request)

        outcome = _send(_alert(), handler)
        assert outcome.kind is OutcomeKind.TRANSIENT
        assert "connection failed" in outcome.detail
