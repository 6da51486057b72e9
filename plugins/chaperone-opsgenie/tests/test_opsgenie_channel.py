"""The ``opsgenie`` channel against ``httpx.MockTransport``: where it sends, with what
headers and body, how it reads each answer, and how it checks its settings.
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import attrs
import httpx
import pytest
from chaperone_opsgenie import (
    OpsgenieChannel,
    acknowledge_payload,
    alias_for,
    close_payload,
    create_payload,
)

from chaperone import (
    Alert,
    AlertStatus,
    ConfigError,
    ManualClock,
    Outcome,
    OutcomeKind,
    SendContext,
    Settings,
    load_settings,
)
from chaperone.channels import channel_settings
from chaperone.store import MemoryStore

API_KEY = "6c3e0f5a-9b1d-4c2e-8f7a-2d4b6e8a0c13"
SUPERVISION_ID = "550e8400-e29b-41d4-a716-446655440000"
Handler = Callable[[httpx.Request], httpx.Response]


def stuck_alert(**changes: Any) -> Alert:
    """The seed's stuck-job alert, changed by ``changes``."""
    alert = Alert(
        type="job_stuck",
        key=SUPERVISION_ID,
        headline="Job Stuck",
        title="Job Stuck: App\\Jobs\\ProcessLargeDataset",
        summary="A supervised job has been detected as stuck and may require intervention.",
        fields={"Supervision ID": SUPERVISION_ID, "Stuck Duration": "30 minutes"},
        job_class="App\\Jobs\\ProcessLargeDataset",
        supervision_id=SUPERVISION_ID,
        occurred_at=datetime(2024, 1, 15, 10, 30, tzinfo=UTC),
    )
    return attrs.evolve(alert, **changes)


def recovered_alert(**changes: Any) -> Alert:
    """The resolution of :func:`stuck_alert`."""
    return stuck_alert(
        headline="Job Recovered",
        title="Job Recovered: App\\Jobs\\ProcessLargeDataset",
        summary="The job recovered: heartbeats resumed.",
        status=AlertStatus.RESOLVED,
        severity="info",
        **changes,
    )


def build(values: Mapping[str, Any] | None = None, **environ: str) -> OpsgenieChannel:
    """The channel from a ``[channels.opsgenie]`` table and environment variables, merged
    as at start-up.
    """
    table = {"api_key": API_KEY} if values is None else dict(values)
    app = Settings(
        channels=("opsgenie",),
        channel_sections={"opsgenie": table},
        config_file="chaperone.toml",
        environ=environ,
    )
    clock = ManualClock()
    settings = channel_settings(OpsgenieChannel, app=app, store=MemoryStore(clock), clock=clock)
    return OpsgenieChannel.from_settings(settings)


def opsgenie_json(status: int, headers: Mapping[str, str] | None = None, **body: Any) -> Handler:
    """A handler answering ``status`` with Opsgenie's JSON body shape."""
    content = {"took": 0.01, "requestId": "9ae63dd7-ed00-4c81-86f0-c4ffd33142c9", **body}

    def handle(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=content, headers=dict(headers or {}))

    return handle


ACCEPTED = opsgenie_json(202, result="Request will be processed")


@attrs.define
class Exchange:
    """What one send did: the requests the service saw and the outcome."""

    requests: list[httpx.Request]
    outcome: Outcome

    @property
    def request(self) -> httpx.Request:
        """The only request sent."""
        assert len(self.requests) == 1, f"{len(self.requests)} requests sent"
        return self.requests[0]

    def body(self) -> Any:
        """The only request's JSON body."""
        return json.loads(self.request.content)


def send(
    alert: Alert,
    handler: Handler = ACCEPTED,
    channel: OpsgenieChannel | None = None,
    timeout: float = 7.5,
) -> Exchange:
    """Send ``alert`` through ``channel`` to a MockTransport answering with ``handler``."""
    requests: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return handler(request)

    async def run() -> Outcome:
        async with httpx.AsyncClient(transport=httpx.MockTransport(record)) as client:
            context = SendContext(http=client, clock=ManualClock(), timeout=timeout)
            return await (channel or build()).send(alert, context)

    return Exchange(requests=requests, outcome=asyncio.run(run()))


class TestCreate:
    """A firing alert is a create request to ``/v2/alerts``."""

    def test_request(self) -> None:
        """POST to the global API with the GenieKey header and the rendered JSON body."""
        exchange = send(stuck_alert())
        request = exchange.request
        assert request.method == "POST"
        assert str(request.url) == "https://api.opsgenie.com/v2/alerts"
        assert request.headers["Authorization"] == f"GenieKey {API_KEY}"
        assert request.headers["Content-Type"] == "application/json"
        assert exchange.body() == create_payload(stuck_alert())

    def test_delivered_names_the_request_id(self) -> None:
        """A 202 is delivered, and the detail quotes Opsgenie's request id."""
        outcome = send(stuck_alert()).outcome
        assert outcome.kind is OutcomeKind.DELIVERED
        assert outcome.status_code == 202
        assert outcome.detail == "HTTP 202, request 9ae63dd7-ed00-4c81-86f0-c4ffd33142c9"

    def test_other_success_without_json(self) -> None:
        """Any 2xx is delivered, even without a JSON body."""
        outcome = send(stuck_alert(), lambda _r: httpx.Response(200, text="ok")).outcome
        assert outcome.kind is OutcomeKind.DELIVERED
        assert outcome.detail == "HTTP 200"

    def test_configured_tags(self) -> None:
        """Tags from the settings follow Chaperone's own."""
        channel = build({"api_key": API_KEY, "tags": "prod, team-a"})
        tags = send(stuck_alert(), channel=channel).body()["tags"]
        assert tags == ["chaperone", "queue-jobs", "job_stuck", "severity:error", "prod", "team-a"]

    def test_context_timeout_is_used(self) -> None:
        """The request carries the send's timeout."""
        request = send(stuck_alert(), timeout=3.25).request
        assert request.extensions["timeout"] == {
            "connect": 3.25,
            "read": 3.25,
            "write": 3.25,
            "pool": 3.25,
        }


class TestAcknowledge:
    """An acknowledgement acknowledges the Opsgenie alert by its alias; its undoing
    unacknowledges it.
    """

    @pytest.mark.parametrize(
        ("status", "action"),
        [(AlertStatus.ACKNOWLEDGED, "acknowledge"), (AlertStatus.UNACKNOWLEDGED, "unacknowledge")],
    )
    def test_request(self, status: AlertStatus, action: str) -> None:
        """POST to ``/v2/alerts/<alias>/<action>?identifierType=alias`` with source and note."""
        alert = stuck_alert(status=status, summary="Job Stuck: acknowledged by alice: on it")
        exchange = send(alert)
        request = exchange.request
        assert request.method == "POST"
        assert request.url.raw_path == (
            f"/v2/alerts/job_stuck%3A{SUPERVISION_ID}/{action}?identifierType=alias".encode()
        )
        assert request.headers["Authorization"] == f"GenieKey {API_KEY}"
        assert exchange.body() == acknowledge_payload(alert)
        assert exchange.body()["note"].startswith("Job Stuck: acknowledged by alice: on it")
        assert exchange.outcome.kind is OutcomeKind.DELIVERED

    def test_the_channel_opts_in(self) -> None:
        """Opsgenie takes acknowledgements and their undoing."""
        assert OpsgenieChannel.accepts(AlertStatus.ACKNOWLEDGED)
        assert OpsgenieChannel.accepts(AlertStatus.UNACKNOWLEDGED)


class TestClose:
    """A resolved alert closes the Opsgenie alert by its alias."""

    def test_request(self) -> None:
        """POST to ``/v2/alerts/<alias>/close?identifierType=alias`` with source and note."""
        exchange = send(recovered_alert())
        request = exchange.request
        assert request.method == "POST"
        assert request.url.raw_path == (
            f"/v2/alerts/job_stuck%3A{SUPERVISION_ID}/close?identifierType=alias".encode()
        )
        assert request.headers["Authorization"] == f"GenieKey {API_KEY}"
        assert exchange.body() == close_payload(recovered_alert())
        assert exchange.body()["source"] == "Chaperone"
        assert exchange.outcome.kind is OutcomeKind.DELIVERED

    @pytest.mark.parametrize(
        "key",
        [
            "a/b/../c",
            "queue_length:App\\Jobs\\X",
            "what?x=1&y=2#frag",
            "100% done",
            "naïve 🚨 key",
            "k" * 600,
        ],
    )
    def test_alias_is_one_escaped_segment(self, key: str) -> None:
        """Any alias travels as one percent-escaped path segment that decodes back to it."""
        alert = recovered_alert(key=key)
        request = send(alert).request
        path, _, query = request.url.raw_path.decode("ascii").partition("?")
        assert path.startswith("/v2/alerts/")
        assert path.endswith("/close")
        segment = path.removeprefix("/v2/alerts/").removesuffix("/close")
        assert "/" not in segment
        assert urllib.parse.unquote(segment) == alias_for(alert)
        assert query == "identifierType=alias"

    def test_opsgenie_404_means_nothing_to_close(self) -> None:
        """Opsgenie's 404 (no open alert with the alias) is delivered: nothing is open."""
        handler = opsgenie_json(404, message="Alert does not exist")
        outcome = send(recovered_alert(), handler).outcome
        assert outcome.kind is OutcomeKind.DELIVERED
        assert outcome.detail == "HTTP 404: nothing open to close"

    def test_foreign_404_is_permanent(self) -> None:
        """A 404 page that is not Opsgenie's JSON (a wrong api_url) stays a failure."""
        outcome = send(
            recovered_alert(), lambda _r: httpx.Response(404, text="<h1>Not Found</h1>")
        ).outcome
        assert outcome.kind is OutcomeKind.PERMANENT

    def test_404_on_create_is_permanent(self) -> None:
        """A 404 to a create is a failure: the alert was not opened."""
        outcome = send(stuck_alert(), opsgenie_json(404, message="Not found")).outcome
        assert outcome.kind is OutcomeKind.PERMANENT


class TestAnswers:
    """Each answer is delivered, transient or permanent as documented."""

    def test_throttled_with_retry_after(self) -> None:
        """A 429 with Retry-After is transient after that many seconds."""
        handler = opsgenie_json(429, {"Retry-After": "2"}, message="Too many requests")
        outcome = send(stuck_alert(), handler).outcome
        assert outcome.kind is OutcomeKind.TRANSIENT
        assert outcome.retry_after == 2.0

    def test_throttled_with_rate_limit_headers(self) -> None:
        """A 429 without Retry-After waits out Opsgenie's rate-limit period, and says why."""
        headers = {
            "X-RateLimit-State": "THROTTLED",
            "X-RateLimit-Reason": "INTEGRATION",
            "X-RateLimit-Period-In-Sec": "60",
        }
        outcome = send(stuck_alert(), opsgenie_json(429, headers)).outcome
        assert outcome.kind is OutcomeKind.TRANSIENT
        assert outcome.retry_after == 60.0
        assert outcome.detail.endswith("(throttled: INTEGRATION)")

    @pytest.mark.parametrize("status", [500, 502, 503, 504, 408])
    def test_server_errors_are_transient(self, status: int) -> None:
        """5xx and 408 are transient; without Retry-After the core's backoff decides."""
        outcome = send(stuck_alert(), opsgenie_json(status)).outcome
        assert outcome.kind is OutcomeKind.TRANSIENT
        assert outcome.retry_after is None
        assert outcome.status_code == status

    @pytest.mark.parametrize("status", [400, 401, 403, 409, 422])
    @pytest.mark.parametrize("alert", [stuck_alert(), recovered_alert()], ids=["create", "close"])
    def test_client_errors_are_permanent(self, status: int, alert: Alert) -> None:
        """400, 401, 403, 409 and 422 are permanent, to a create as to a close."""
        outcome = send(alert, opsgenie_json(status, message="Key format is not valid!")).outcome
        assert outcome.kind is OutcomeKind.PERMANENT
        assert outcome.status_code == status
        assert "Key format is not valid!" in outcome.detail

    @pytest.mark.parametrize(
        "error", [httpx.ReadTimeout("slow"), httpx.ConnectError("refused")], ids=type
    )
    def test_network_errors_are_transient(self, error: httpx.TransportError) -> None:
        """Timeouts and refused connections are transient, with no URL or key in the detail."""

        def fail(request: httpx.Request) -> httpx.Response:
            raise error

        outcome = send(stuck_alert(), fail).outcome
        assert outcome.kind is OutcomeKind.TRANSIENT
        assert type(error).__name__ in outcome.detail
        assert API_KEY not in outcome.detail

    def test_echoed_key_is_scrubbed(self) -> None:
        """A service quoting the key back does not put it in the outcome."""

        def echo(request: httpx.Request) -> httpx.Response:
            return httpx.Response(401, text=f"bad header {request.headers['Authorization']}")

        outcome = send(stuck_alert(), echo).outcome
        assert outcome.kind is OutcomeKind.PERMANENT
        assert API_KEY not in outcome.detail
        assert outcome.detail == "HTTP 401: bad header GenieKey ********"


class TestSettings:
    """Region, base URL, key and tags are checked at start-up."""

    @pytest.mark.parametrize(
        ("values", "url"),
        [
            ({}, "https://api.opsgenie.com/v2/alerts"),
            ({"region": "us"}, "https://api.opsgenie.com/v2/alerts"),
            ({"region": " EU "}, "https://api.eu.opsgenie.com/v2/alerts"),
            (
                {"region": "eu", "api_url": "https://api.opsgenie.com"},
                "https://api.opsgenie.com/v2/alerts",
            ),
            (
                {"api_url": "https://api.atlassian.com/jsm/ops/integration/"},
                "https://api.atlassian.com/jsm/ops/integration/v2/alerts",
            ),
            (
                {"api_url": "https://api.eu.opsgenie.com/v2/alerts"},
                "https://api.eu.opsgenie.com/v2/alerts",
            ),
            ({"api_url": "http://127.0.0.1:8080"}, "http://127.0.0.1:8080/v2/alerts"),
            ({"api_url": "http://localhost:8080/og"}, "http://localhost:8080/og/v2/alerts"),
            ({"api_url": "http://[::1]:8080"}, "http://[::1]:8080/v2/alerts"),
        ],
    )
    def test_where_alerts_go(self, values: dict[str, str], url: str) -> None:
        """``region`` picks Opsgenie's API; ``api_url`` overrides it (JSM, a proxy)."""
        channel = build({"api_key": API_KEY, **values})
        assert str(send(stuck_alert(), channel=channel).request.url) == url

    def test_environment_overrides_the_file(self) -> None:
        """``CHAPERONE_OPSGENIE_*`` variables override the TOML table."""
        channel = build(
            {"api_key": "not a key", "region": "us"},
            CHAPERONE_OPSGENIE_API_KEY=API_KEY,
            CHAPERONE_OPSGENIE_REGION="eu",
        )
        request = send(stuck_alert(), channel=channel).request
        assert str(request.url) == "https://api.eu.opsgenie.com/v2/alerts"
        assert request.headers["Authorization"] == f"GenieKey {API_KEY}"

    def test_bad_key_names_the_variable_not_the_key(self) -> None:
        """A malformed key from the environment fails naming the variable, not the key."""
        bad = "GenieKey 6c3e0f5a-9b1d-4c2e-8f7a-2d4b6e8a0c13"
        with pytest.raises(ConfigError) as caught:
            build({}, CHAPERONE_OPSGENIE_API_KEY=bad)
        message = str(caught.value)
        assert "CHAPERONE_OPSGENIE_API_KEY" in message
        assert API_KEY not in message

    def test_every_problem_at_once(self) -> None:
        """Key, region and tags problems are reported together."""
        with pytest.raises(ConfigError) as caught:
            build({"region": "mars", "tags": "a b"})
        keys = [problem.key for problem in caught.value.problems]
        assert keys == [
            "CHAPERONE_OPSGENIE_API_KEY",
            "channels.opsgenie.region",
            "channels.opsgenie.tags",
        ]

    def test_loaded_from_a_real_environment(self, tmp_path: Any) -> None:
        """Through load_settings, as the CLI reads them: the key is masked when shown."""
        app = load_settings(
            {
                "CHAPERONE_STORE": "memory://",
                "CHAPERONE_ALERT_CHANNELS": "opsgenie",
                "CHAPERONE_OPSGENIE_API_KEY": API_KEY,
                "CHAPERONE_OPSGENIE_TAGS": "prod",
            },
            tmp_path,
        )
        clock = ManualClock()
        settings = channel_settings(OpsgenieChannel, app=app, store=MemoryStore(clock), clock=clock)
        channel = OpsgenieChannel.from_settings(settings)
        assert channel.tags == ("prod",)
        assert channel.api_url == "https://api.opsgenie.com"
        assert API_KEY not in repr(channel)
        assert API_KEY not in str(vars(channel))
