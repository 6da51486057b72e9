"""What the ``slack`` channel posts: the seed's message format, within Slack's limits for
any alert.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from chaperone_slack import render
from chaperone_slack._render import (
    BODY_LIMIT,
    FIELD_TITLE_LIMIT,
    FIELD_VALUE_LIMIT,
    FOOTER,
    MAX_FIELDS,
    MESSAGE_LIMIT,
    SECTION_LIMIT,
    TEXT_LIMIT,
    TITLE_LIMIT,
    shown,
    texts_of,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaperone import (
    Alert,
    AlertStatus,
    CircuitBreakerClosed,
    CircuitBreakerOpened,
    Event,
    JobRecovered,
    JobStuck,
    JobTimeout,
    ResourceViolationDetected,
    ThresholdExceeded,
    ThresholdMetric,
    ViolationType,
)
from chaperone.builtin.alert_builder import chaperone_alerts
from chaperone.channels.text import multi_line, utf16_length
from chaperone.config import Settings
from chaperone.testing import strategies

WHEN = datetime(2024, 1, 15, 14, 23, 45, tzinfo=UTC)
APP_URL = "https://app.example.test"
SLACK_COLORS = re.compile(r"danger|warning|good|#[0-9A-Fa-f]{6}")
ENTITY = re.compile(r"&(?!amp;|lt;|gt;)")
LINK = re.compile(r"<(https?://[^|<>\s]+)\|([^<>]+)>")

property_settings = settings(
    deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


def built_alerts(event: Event) -> Sequence[Alert]:
    """The core's built-in alerts for ``event``, with an app URL configured."""
    runtime: Any = SimpleNamespace(settings=Settings(app_url=APP_URL))
    alerts = chaperone_alerts(event=event, runtime=runtime)
    assert alerts
    return alerts


def only_alert(event: Event) -> Alert:
    """The one built-in alert ``event`` raises."""
    (alert,) = built_alerts(event)
    return alert


def attachment(payload: dict[str, Any]) -> dict[str, Any]:
    """The message's only attachment."""
    (first,) = payload["attachments"]
    assert isinstance(first, dict)
    return first


def fields_of(payload: dict[str, Any]) -> dict[str, str]:
    """The attachment's fields, title to value."""
    return {field["title"]: field["value"] for field in attachment(payload).get("fields", [])}


def assert_within_limits(payload: dict[str, Any]) -> None:
    """Every limit Slack documents, and this channel's own budgets."""
    encoded = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    assert encoded
    assert "channel" not in payload, "incoming webhooks ignore `channel`: never send one"
    assert utf16_length(payload["text"]) <= TEXT_LIMIT
    assert len(payload.get("blocks", [])) <= 50
    total = sum(utf16_length(text) for text in texts_of(payload))
    assert total <= MESSAGE_LIMIT, f"the message holds {total} characters"
    for text in texts_of(payload):
        assert utf16_length(text) <= SECTION_LIMIT
    (first,) = payload["attachments"]
    assert SLACK_COLORS.fullmatch(first["color"])
    assert first["footer"] == FOOTER
    assert isinstance(first["ts"], int)
    assert utf16_length(first["title"]) <= TITLE_LIMIT
    assert utf16_length(first.get("text", "")) <= BODY_LIMIT
    fields = first.get("fields", [])
    assert len(fields) <= MAX_FIELDS + 2
    for field in fields:
        assert set(field) == {"title", "value", "short"}
        assert isinstance(field["short"], bool)
        assert utf16_length(field["title"]) <= FIELD_TITLE_LIMIT
        assert field["value"]
        if field["title"] != "Links":
            assert utf16_length(field["value"]) <= FIELD_VALUE_LIMIT


def assert_escaped(payload: dict[str, Any]) -> None:
    """No text can open Slack markup (a mention, a link) but the channel's own links."""
    first = attachment(payload)
    texts = [payload["text"], first["fallback"], first["title"], first.get("text", "")]
    for field in first.get("fields", []):
        texts.append(field["title"])
        texts.append(LINK.sub("", field["value"]) if field["title"] == "Links" else field["value"])
    for text in texts:
        assert "<" not in text
        assert ">" not in text
        assert not ENTITY.search(text), f"a bare & in {text[:80]!r}"


class TestAnyAlert:
    """Whatever the alert, the message fits Slack's limits and is well formed."""

    @property_settings
    @given(alert=strategies.alerts())
    def test_within_every_limit_and_escaped(self, alert: Alert) -> None:
        """Any alert, oversized and non-ASCII ones included, renders within every limit,
        and no text from it can open Slack markup (&, < and > are escaped).
        """
        payload = render(alert)
        assert_within_limits(payload)
        assert_escaped(payload)

    @settings(property_settings, max_examples=50)
    @given(alert=strategies.alerts())
    def test_format_follows_the_alert(self, alert: Alert) -> None:
        """Footer, timestamp, colour and emoji follow the alert's time, status and
        severity; the alert's fields come first, in order, up to the number shown.
        """
        payload = render(alert)
        first = attachment(payload)
        assert first["ts"] == int(alert.occurred_at.timestamp())
        assert first["footer"] == FOOTER
        if alert.is_resolved:
            assert payload["text"].startswith("✅ ")
            assert first["color"] == "good"
        else:
            expected = {
                "critical": ("🚨", "danger"),
                "error": ("🚨", "danger"),
                "warning": ("⚠️", "warning"),
                "info": ("ℹ️", "#439FE0"),  # noqa: RUF001 - the information emoji
            }[alert.severity.value]
            assert payload["text"].startswith(expected[0] + " ")
            assert first["color"] == expected[1]
        titles = [field["title"] for field in first.get("fields", [])]
        listed = alert.fields[:MAX_FIELDS]
        assert titles[: len(listed)] == [shown(name, FIELD_TITLE_LIMIT) for name, _ in listed]

    def test_oversized_alert(self) -> None:
        """An alert given 50,000-character texts (cut by the core) and 60 fields still
        fits.
        """
        text = ("Ünïcødé ⚠ 🚨 <&> " * 5000)[:50_000]
        alert = Alert(
            type="job_stuck",
            key=text,
            headline=text,
            title=text,
            summary=text,
            explanation=text,
            fields={f"{text[:30]} {index}": text[:200] for index in range(60)},
            job_class=text,
            details_url="https://example.com/" + "x" * 5000,
            runbook_url="https://example.com/runbook",
            occurred_at=WHEN,
        )
        payload = render(alert)
        assert_within_limits(payload)
        assert_escaped(payload)
        fields = attachment(payload)["fields"]
        assert fields[MAX_FIELDS] == {
            "title": "More",
            "value": "40 more fields not shown",
            "short": False,
        }
        assert fields[-1]["value"] == "<https://example.com/runbook|Runbook>"
        assert "title_link" not in attachment(payload)


class TestFit:
    """Cutting and escaping one text."""

    @given(text=strategies.texts(), limit=st.integers(min_value=1, max_value=5000))
    @property_settings
    def test_fits_and_keeps_a_prefix(self, text: str, limit: int) -> None:
        """The result fits the limit and reads, unescaped, as the start of the text."""
        result = shown(text, limit)
        assert utf16_length(result) <= limit
        cleaned = multi_line(text)
        if result.endswith("…") and html.unescape(result) != cleaned:
            assert cleaned.startswith(html.unescape(result[:-1]))
        else:
            assert html.unescape(result) == cleaned

    def test_escape_is_never_cut(self) -> None:
        """A cut never leaves half an entity such as ``&am``."""
        assert shown("a&&&&&&&&", 8) == "a&amp;…"

    def test_astral_characters_count_twice(self) -> None:
        """An emoji outside the BMP counts as two, as Slack counts it."""
        assert shown("🚨🚨🚨", 5) == "🚨🚨…"
        assert utf16_length("🚨") == 2

    def test_control_characters_are_dropped(self) -> None:
        """NUL, escape sequences and carriage returns go; tabs and newlines stay."""
        assert shown("a\x00b\x1b[31mc\r\nd\te", 100) == "abc\nd\te"


class TestSeedFormat:
    """The four built-in alert types look as the seed's Slack example does."""

    def test_circuit_breaker(self) -> None:
        """The seed's example: 🚨 Circuit Breaker Opened, the service, its fields, red."""
        payload = render(
            only_alert(
                CircuitBreakerOpened(
                    service="payment-gateway", failure_count=10, opened_at=WHEN, occurred_at=WHEN
                )
            )
        )
        first = attachment(payload)
        assert payload["text"] == "🚨 Circuit Breaker Opened"
        assert first["title"] == "payment-gateway"
        assert first["color"] == "danger"
        assert first["footer"] == "Chaperone Job Supervision"
        assert first["ts"] == 1705328625
        assert fields_of(payload) == {
            "Service": "payment-gateway",
            "Failure Count": "10",
            "Opened At": "2024-01-15 14:23:45 UTC",
            "Status": "Service Unavailable",
        }
        assert all(field["short"] for field in first["fields"])
        assert first["text"].startswith("The circuit breaker for payment-gateway opened")

    def test_job_stuck(self) -> None:
        """Job Stuck: the job class as title, red, its fields and the details link."""
        payload = render(
            only_alert(
                JobStuck(
                    supervision_id="550e8400-e29b-41d4-a716-446655440000",
                    job_class="App\\Jobs\\ProcessLargeDataset",
                    stuck_duration=timedelta(minutes=30),
                    last_heartbeat=WHEN - timedelta(minutes=30),
                    occurred_at=WHEN,
                )
            )
        )
        first = attachment(payload)
        details = f"{APP_URL}/chaperone/jobs/550e8400-e29b-41d4-a716-446655440000"
        assert payload["text"] == "🚨 Job Stuck"
        assert first["title"] == "App\\Jobs\\ProcessLargeDataset"
        assert first["title_link"] == details
        assert first["color"] == "danger"
        fields = fields_of(payload)
        assert list(fields) == [
            "Supervision ID",
            "Job Class",
            "Stuck Duration",
            "Last Heartbeat",
            "Links",
        ]
        assert fields["Last Heartbeat"] == "2024-01-15 13:53:45 UTC"
        assert fields["Links"] == f"<{details}|View Job Details>"
        assert "infinite loop" in first["text"]

    def test_job_timeout(self) -> None:
        """Job Timeout: red, with the limit and the actual duration."""
        payload = render(
            only_alert(
                JobTimeout(
                    supervision_id="abc",
                    job_class="App\\Jobs\\GenerateMonthlyReport",
                    timeout=timedelta(seconds=300),
                    actual_duration=timedelta(seconds=350),
                    occurred_at=WHEN,
                )
            )
        )
        assert payload["text"] == "🚨 Job Timeout"
        assert attachment(payload)["title"] == "App\\Jobs\\GenerateMonthlyReport"
        assert attachment(payload)["color"] == "danger"
        fields = fields_of(payload)
        assert fields["Timeout Limit"] == "300s"
        assert fields["Actual Duration"] == "350s"
        assert fields["Exceeded By"] == "50s"

    def test_resource_violation(self) -> None:
        """Resource Violation: a warning, orange, with ⚠️."""
        payload = render(
            only_alert(
                ResourceViolationDetected(
                    supervision_id="abc",
                    job_class="App\\Jobs\\ImportCustomerFeed",
                    violation_type=ViolationType.MEMORY,
                    limit=512,
                    actual=768,
                    occurred_at=WHEN,
                )
            )
        )
        assert payload["text"] == "⚠️ Resource Violation"
        assert attachment(payload)["color"] == "warning"
        assert attachment(payload)["title"] == "App\\Jobs\\ImportCustomerFeed"
        assert fields_of(payload)["Violation Type"] == "memory"

    def test_threshold(self) -> None:
        """A threshold alert is a warning about its subject."""
        payload = render(
            only_alert(
                ThresholdExceeded(
                    metric=ThresholdMetric.ERROR_RATE,
                    subject="App\\Jobs\\SendInvoices",
                    value=12.5,
                    threshold=5,
                    occurred_at=WHEN,
                )
            )
        )
        assert payload["text"] == "⚠️ Error Rate Exceeded"
        assert attachment(payload)["color"] == "warning"
        assert fields_of(payload)["Value"] == "12.5%"

    def test_mentions_cannot_be_injected(self) -> None:
        """A job class holding ``<!channel>`` is shown, not turned into a mention."""
        payload = render(
            only_alert(
                JobStuck(
                    supervision_id="abc",
                    job_class="<!channel> & <https://evil.test|click>",
                    stuck_duration=timedelta(minutes=5),
                    occurred_at=WHEN,
                )
            )
        )
        assert attachment(payload)["title"] == (
            "&lt;!channel&gt; &amp; &lt;https://evil.test|click&gt;"
        )
        assert_escaped(payload)


class TestResolved:
    """Resolved alerts read as resolutions."""

    @pytest.mark.parametrize(
        ("event", "text", "title"),
        [
            (
                JobRecovered(supervision_id="abc", job_class="App\\Jobs\\X", occurred_at=WHEN),
                "✅ Job Recovered",
                "App\\Jobs\\X",
            ),
            (
                CircuitBreakerClosed(service="payment-gateway", closed_at=WHEN, occurred_at=WHEN),
                "✅ Circuit Breaker Closed",
                "payment-gateway",
            ),
        ],
    )
    def test_recovery_events(self, event: Event, text: str, title: str) -> None:
        """A recovery is green with ✅ and names what recovered."""
        payload = render(only_alert(event))
        assert payload["text"] == text
        assert attachment(payload)["title"] == title
        assert attachment(payload)["color"] == "good"

    @settings(property_settings, max_examples=50)
    @given(alert=strategies.alerts(status=AlertStatus.RESOLVED))
    def test_any_resolved_alert(self, alert: Alert) -> None:
        """Any resolved alert, whatever its severity, is green with ✅ and within limits."""
        payload = render(alert)
        assert payload["text"].startswith("✅ ")
        assert attachment(payload)["color"] == "good"
        assert_within_limits(payload)


class TestLinks:
    """Links to the job's details and the runbook."""

    def alert(self, **links: str | None) -> Alert:
        """A job-stuck alert with the given ``details_url`` / ``runbook_url``."""
        return Alert(
            type="job_stuck",
            key="k",
            headline="Job Stuck",
            title="Job Stuck: X",
            summary="s",
            occurred_at=WHEN,
            job_class="X",
            **links,
        )

    def test_both_links(self) -> None:
        """Details and runbook links share one field, in Slack's link syntax."""
        payload = render(
            self.alert(details_url="https://a.test/j?x=1&y=2", runbook_url="https://a.test/rb")
        )
        assert fields_of(payload)["Links"] == (
            "<https://a.test/j?x=1&amp;y=2|View Job Details> • <https://a.test/rb|Runbook>"
        )
        assert attachment(payload)["title_link"] == "https://a.test/j?x=1&y=2"

    def test_characters_that_end_a_link_are_encoded(self) -> None:
        """A ``|`` or ``>`` in a URL cannot end the link early."""
        payload = render(self.alert(details_url="https://a.test/a|b>c"))
        assert fields_of(payload)["Links"] == "<https://a.test/a%7Cb%3Ec|View Job Details>"

    def test_any_whitespace_in_a_url_is_encoded(self) -> None:
        """A no-break space or an ideographic space cannot split the link either."""
        payload = render(self.alert(runbook_url="https://a.test/a\xa0b\u3000c d"))
        assert fields_of(payload)["Links"] == "<https://a.test/a%C2%A0b%E3%80%80c%20d|Runbook>"

    @pytest.mark.parametrize(
        "url", ["javascript:alert(1)", "ftp://a.test/x", "https://a.test/" + "x" * 3000]
    )
    def test_unlinkable_urls_are_left_out(self, url: str) -> None:
        """A URL that is not http(s), or too long to link whole, is not linked."""
        payload = render(self.alert(details_url=url))
        assert "Links" not in fields_of(payload)
        assert "title_link" not in attachment(payload)

    def test_no_links(self) -> None:
        """Without URLs there is no links field."""
        assert "Links" not in fields_of(render(self.alert()))


CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
"""What must never reach Slack: control characters but tab and newline, bidi
overrides, lone surrogates."""


class TestHostileText:
    """Text from a job can neither break Slack's message nor open its markup."""

    @property_settings
    @given(alert=strategies.hostile_alerts())
    def test_any_hostile_alert_fits_and_is_escaped(self, alert: Alert) -> None:
        """Any hostile alert renders within every limit, escaped, with no control
        character, bidi override or lone surrogate left.
        """
        payload = render(alert)
        assert_within_limits(payload)
        assert_escaped(payload)
        for text in texts_of(payload):
            assert not CONTROL.search(text), text[:80]

    def test_mentions_and_links_in_an_error_stay_text(self) -> None:
        """``<!channel>``, a user mention and a Slack link in an error are shown, not
        acted on.
        """
        alert = Alert(
            type="job_failed",
            key="k",
            headline="Job Failed",
            title="Job Failed: x",
            summary="s",
            fields={"Error": "<!channel> <@U123> <https://evil.example/|click>"},
            occurred_at=WHEN,
        )
        assert fields_of(render(alert))["Error"] == (
            "&lt;!channel&gt; &lt;@U123&gt; &lt;https://evil.example/|click&gt;"
        )

    def test_a_lone_surrogate_is_accepted(self) -> None:
        """Lone surrogates in every text, even past the alert's own cleaning, render to
        a message within Slack's limits that encodes to UTF-8.
        """
        alert = strategies.alert_with_raw_surrogates(WHEN)
        payload = render(alert)
        assert_within_limits(payload)
        assert "\ufffd".encode() in json.dumps(payload, ensure_ascii=False).encode()
