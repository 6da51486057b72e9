r"""The e-mail an alert becomes: the seed's format for each built-in alert, resolutions,
escaping, and limits that hold for any alert (hypothesis).
"""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage

import attrs
import pytest
from aiosmtplib.email import flatten_message
from chaperone_mail import build_message, render
from chaperone_mail._render import (
    FIELD_NAME_LIMIT,
    FIELD_VALUE_LIMIT,
    MAX_FIELDS,
    MESSAGE_LIMIT,
    SUBJECT_LIMIT,
    TEXT_LIMIT,
)
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from chaperone import (
    Alert,
    Chaperone,
    CircuitBreakerOpened,
    Event,
    JobRecovered,
    JobStuck,
    JobTimeout,
    ResourceViolationDetected,
    Settings,
    ThresholdExceeded,
    ThresholdMetric,
    ViolationType,
)
from chaperone.builtin.alert_builder import build_alerts
from chaperone.testing import strategies
from chaperone.testing.strategies import OVERSIZED_LENGTH, alerts, hostile_alerts

APP_URL = "https://app.example.com"
SUPERVISION_ID = "550e8400-e29b-41d4-a716-446655440000"
STUCK_CLASS = "App\\Jobs\\ProcessLargeDataset"
AT = datetime(2024, 1, 15, 11, 0, tzinfo=UTC)
SENDER = Address(display_name="Chaperone", username="alerts", domain="example.com")
RECIPIENTS = ("ops@example.com", "dev@example.com")
PROPERTY = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def runtime() -> Iterator[Chaperone]:
    """A runtime with an app URL, for the built-in alert builders."""
    with Chaperone(Settings(app_url=APP_URL, channels=("log",))) as runtime:
        yield runtime


@pytest.fixture(scope="module")
def runtime_without_url() -> Iterator[Chaperone]:
    """A runtime with no app URL: no link to job details."""
    with Chaperone(Settings(channels=("log",))) as runtime:
        yield runtime


def alert_for(event: Event, runtime: Chaperone) -> Alert:
    built = build_alerts(event, runtime.runtime)
    assert built is not None
    assert len(built) == 1
    return built[0]


def message_for(alert: Alert) -> EmailMessage:
    return build_message(alert, sender=SENDER, recipients=RECIPIENTS, now=AT)


def parts(message: EmailMessage) -> tuple[str, str]:
    """The text and HTML bodies of a message, decoded."""
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert isinstance(text, EmailMessage)
    assert isinstance(html, EmailMessage)
    return text.get_content(), html.get_content()


def stuck(runtime: Chaperone) -> Alert:
    return alert_for(
        JobStuck(
            supervision_id=SUPERVISION_ID,
            job_class=STUCK_CLASS,
            stuck_duration=timedelta(minutes=30),
            last_heartbeat=datetime(2024, 1, 15, 10, 30, tzinfo=UTC),
            occurred_at=AT,
        ),
        runtime,
    )


def in_order(text: str, pieces: list[str]) -> None:
    """Assert each piece occurs in ``text``, each after the one before."""
    position = 0
    for piece in pieces:
        found = text.find(piece, position)
        assert found >= 0, f"{piece!r} missing (or out of order) in:\n{text}"
        position = found + len(piece)


class TestSeedFormat:
    """Each built-in alert reads as the seed's "Example Email Alert"."""

    def test_job_stuck_text(self, runtime: Chaperone) -> None:
        """A stuck job's text body is the seed's example, line for line, with the link."""
        content = render(stuck(runtime))
        assert content.subject == f"[Chaperone Alert] Job Stuck: {STUCK_CLASS}"
        in_order(
            content.text,
            [
                "Job Stuck Alert\n",
                "Severity: error · Type: job_stuck\n",
                "A supervised job has been detected as stuck and may require intervention.\n",
                f"Supervision ID: {SUPERVISION_ID}\n",
                f"Job Class: {STUCK_CLASS}\n",
                "Stuck Duration: 30 minutes\n",
                "Last Heartbeat: 2024-01-15 10:30:00 UTC\n",
                "This job may be in an infinite loop, deadlocked, or otherwise unable to "
                "complete.\n",
                f"View Job Details: {APP_URL}/chaperone/jobs/{SUPERVISION_ID}\n",
                "Chaperone Job Supervision",
            ],
        )

    def test_job_stuck_html(self, runtime: Chaperone) -> None:
        """The HTML body has the same content, escaped, and a "View Job Details" button."""
        html = render(stuck(runtime)).html
        in_order(
            html,
            [
                "<h1",
                "Job Stuck Alert</h1>",
                "Severity: error · Type: job_stuck",
                "A supervised job has been detected as stuck",
                ">Supervision ID</th>",
                f">{SUPERVISION_ID}</td>",
                ">Job Class</th>",
                f">{STUCK_CLASS}</td>",
                ">Stuck Duration</th>",
                ">30 minutes</td>",
                ">Last Heartbeat</th>",
                "This job may be in an infinite loop",
                f'<a href="{APP_URL}/chaperone/jobs/{SUPERVISION_ID}"',
                ">View Job Details</a>",
            ],
        )

    def test_job_timeout(self, runtime: Chaperone) -> None:
        """A timeout names the job in the subject and carries its limits and the link."""
        alert = alert_for(
            JobTimeout(
                supervision_id=SUPERVISION_ID,
                job_class="App\\Jobs\\GenerateMonthlyReport",
                timeout=timedelta(seconds=300),
                actual_duration=timedelta(seconds=350),
                occurred_at=AT,
            ),
            runtime,
        )
        content = render(alert)
        assert content.subject == "[Chaperone Alert] Job Timeout: App\\Jobs\\GenerateMonthlyReport"
        in_order(
            content.text,
            [
                "Job Timeout Alert\n",
                "Severity: error · Type: job_timeout\n",
                "A supervised job has exceeded its timeout limit.",
                "Timeout Limit: 300s\n",
                "Actual Duration: 350s\n",
                "Exceeded By: 50s\n",
                "waiting on a slow dependency",
                f"View Job Details: {APP_URL}/chaperone/jobs/{SUPERVISION_ID}",
            ],
        )

    def test_circuit_breaker(self, runtime: Chaperone) -> None:
        """A circuit breaker names the service, is critical, and has no job to link to."""
        alert = alert_for(
            CircuitBreakerOpened(
                service="payment-gateway",
                failure_count=10,
                opened_at=AT,
                occurred_at=AT,
            ),
            runtime,
        )
        content = render(alert)
        assert content.subject == "[Chaperone Alert] Circuit Breaker Opened: payment-gateway"
        in_order(
            content.text,
            [
                "Circuit Breaker Opened Alert\n",
                "Severity: critical · Type: circuit_breaker\n",
                "Service: payment-gateway\n",
                "Failure Count: 10\n",
                "Opened At: 2024-01-15 11:00:00 UTC\n",
                "Status: Service Unavailable\n",
                "The service may be down",
            ],
        )
        assert "View Job Details" not in content.text
        assert "View Job Details" not in content.html

    def test_resource_violation(self, runtime: Chaperone) -> None:
        """A resource violation gives the limit, the actual use and the likely cause."""
        alert = alert_for(
            ResourceViolationDetected(
                supervision_id=SUPERVISION_ID,
                job_class="App\\Jobs\\ImportCustomerFeed",
                violation_type=ViolationType.MEMORY,
                limit=512,
                actual=768,
                occurred_at=AT,
            ),
            runtime,
        )
        content = render(alert)
        assert (
            content.subject == "[Chaperone Alert] Resource Violation: App\\Jobs\\ImportCustomerFeed"
        )
        in_order(
            content.text,
            [
                "Resource Violation Alert\n",
                "Severity: warning · Type: resource_violation\n",
                "Violation Type: memory\n",
                "Limit: 512 MB\n",
                "Actual: 768 MB\n",
                "leaking memory",
                "View Job Details: ",
            ],
        )

    def test_threshold(self, runtime: Chaperone) -> None:
        """A threshold alert reads "<metric> Exceeded: <subject>"."""
        alert = alert_for(
            ThresholdExceeded(
                metric=ThresholdMetric.ERROR_RATE,
                subject="App\\Jobs\\SendInvoices",
                value=12.5,
                threshold=5,
                window=timedelta(minutes=5),
                occurred_at=AT,
            ),
            runtime,
        )
        content = render(alert)
        assert content.subject == "[Chaperone Alert] Error Rate Exceeded: App\\Jobs\\SendInvoices"
        in_order(
            content.text,
            [
                "Error Rate Exceeded Alert\n",
                "Severity: warning · Type: threshold\n",
                "Error Rate is 12.5%, over the threshold of 5%.",
                "Value: 12.5%\n",
                "Threshold: 5%\n",
            ],
        )

    def test_no_link_without_app_url(self, runtime_without_url: Chaperone) -> None:
        """Without CHAPERONE_APP_URL there is no "View Job Details" link at all."""
        content = render(stuck(runtime_without_url))
        assert "View Job Details" not in content.text
        assert "View Job Details" not in content.html
        assert "<a " not in content.html

    def test_runbook_link(self, runtime: Chaperone) -> None:
        """An alert's runbook URL is given as a link of its own."""
        alert = attrs.evolve(stuck(runtime), runbook_url="https://wiki.example.com/stuck")
        content = render(alert)
        assert "Runbook: https://wiki.example.com/stuck\n" in content.text
        assert '<a href="https://wiki.example.com/stuck">' in content.html


class TestResolved:
    """A resolved alert is told as a resolution, not as another alarm."""

    def test_job_recovered(self, runtime: Chaperone) -> None:
        """A recovered job: "[Chaperone Resolved] Job Recovered: ...", marked resolved."""
        alert = alert_for(
            JobRecovered(
                supervision_id=SUPERVISION_ID,
                job_class=STUCK_CLASS,
                occurred_at=AT,
            ),
            runtime,
        )
        content = render(alert)
        assert content.subject == f"[Chaperone Resolved] Job Recovered: {STUCK_CLASS}"
        in_order(
            content.text,
            [
                "Job Recovered\n",
                "Severity: info · Type: job_stuck · Resolved\n",
                "The job recovered: heartbeats resumed.",
                f"View Job Details: {APP_URL}/chaperone/jobs/{SUPERVISION_ID}",
            ],
        )
        assert "Alert" not in content.text.splitlines()[0]
        assert "#16a34a" in content.html

    def test_message_headers_say_resolved(self, runtime: Chaperone) -> None:
        """The X-Chaperone-Status header tells mail filters it is a resolution."""
        alert = alert_for(
            JobRecovered(supervision_id=SUPERVISION_ID, job_class=STUCK_CLASS, occurred_at=AT),
            runtime,
        )
        message = message_for(alert)
        assert message["X-Chaperone-Status"] == "resolved"
        assert message["X-Chaperone-Incident"] == f"job_stuck:{SUPERVISION_ID}"


class TestMessage:
    """The whole e-mail: headers, both alternatives, escaping, limits."""

    def test_headers(self, runtime: Chaperone) -> None:
        """From, To (every recipient), Date, Message-ID and Auto-Submitted are set."""
        message = message_for(stuck(runtime))
        assert message["From"] == "Chaperone <alerts@example.com>"
        assert message["To"] == "ops@example.com, dev@example.com"
        assert message["Date"] == "Mon, 15 Jan 2024 11:00:00 +0000"
        assert message["Message-ID"].endswith("@example.com>")
        assert message["Auto-Submitted"] == "auto-generated"
        assert message["X-Chaperone-Alert-Type"] == "job_stuck"
        assert message.get_content_type() == "multipart/alternative"
        assert [part.get_content_type() for part in message.iter_parts()] == [
            "text/plain",
            "text/html",
        ]

    def test_everything_user_provided_is_escaped(self, runtime: Chaperone) -> None:
        """Markup in any part of the alert shows as text in the HTML, never as markup."""
        evil = '<script>alert("x")</script>'
        alert = attrs.evolve(
            stuck(runtime),
            headline=evil,
            title=evil,
            summary=evil,
            explanation=evil,
            fields={evil: evil},
            details_url='https://app.example.com/"><script>',
            runbook_url="javascript:alert(1)",
        )
        html = render(alert).html
        assert "<script" not in html
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
        assert 'href="https://app.example.com/&quot;&gt;&lt;script&gt;"' in html
        assert "javascript:" not in html

    def test_header_injection_in_title_is_flattened(self, runtime: Chaperone) -> None:
        """Line breaks in the title never start a new header: the subject is one line."""
        alert = attrs.evolve(
            stuck(runtime), title="Job Stuck\r\nBcc: victim@example.com\nX-Evil: 1"
        )
        message = message_for(alert)
        assert message["Subject"] == (
            "[Chaperone Alert] Job Stuck Bcc: victim@example.com X-Evil: 1"
        )
        assert message["Bcc"] is None
        assert message["X-Evil"] is None

    def test_long_subject_is_cut_with_an_ellipsis(self, runtime: Chaperone) -> None:
        """A huge title makes a subject of exactly SUBJECT_LIMIT characters ending in "…"."""
        alert = attrs.evolve(stuck(runtime), title="Job Stuck: " + "X" * OVERSIZED_LENGTH)
        subject = render(alert).subject
        assert len(subject) == SUBJECT_LIMIT
        assert subject.startswith("[Chaperone Alert] Job Stuck: XXX")
        assert subject.endswith("XX…")

    def test_many_fields_are_counted_not_lost_silently(self, runtime: Chaperone) -> None:
        """Past MAX_FIELDS fields, one line says how many more there were."""
        alert = attrs.evolve(
            stuck(runtime), fields=[(f"Field {n}", str(n)) for n in range(MAX_FIELDS + 7)]
        )
        content = render(alert)
        assert f"Field {MAX_FIELDS - 1}: {MAX_FIELDS - 1}\n" in content.text
        assert f"Field {MAX_FIELDS}:" not in content.text
        assert "… and 7 more fields not shown" in content.text
        assert "… and 7 more fields not shown" in content.html

    def test_long_texts_are_cut(self, runtime: Chaperone) -> None:
        """Summary, explanation, field names and values are cut at their limits, or at
        the alert's own where those are shorter (with the alert's marker).
        """
        long = "y" * OVERSIZED_LENGTH
        alert = attrs.evolve(stuck(runtime), summary=long, explanation=long, fields={long: long})
        assert len(alert.summary) < TEXT_LIMIT
        [(alert_name, _)] = alert.fields
        assert len(alert_name) == FIELD_NAME_LIMIT
        text = render(alert).text
        lines = text.splitlines()
        assert alert.summary in lines
        assert alert.summary.endswith(" characters cut]")
        name, _, value = next(
            line for line in lines if line.startswith("y") and ": " in line
        ).partition(": ")
        assert name == alert_name
        assert value == "y" * (FIELD_VALUE_LIMIT - 1) + "…"


class TestWorstCase:
    """The largest alert, in the characters that grow most on the wire, still fits."""

    @pytest.mark.parametrize("char", ['"', "<", "😀", "é", "\n", "\x00"])
    def test_largest_alert_fits(self, char: str) -> None:
        """Every text far past its limit, more fields than shown, in characters that
        HTML escaping or UTF-8 and base64 make longest: under MESSAGE_LIMIT bytes.
        """
        text = char * OVERSIZED_LENGTH
        alert = Alert(
            type="job_stuck",
            key=text,
            headline=text,
            title=text,
            summary=text,
            explanation=text,
            fields=[(text, text)] * 60,
            labels={text: text},
            details_url="https://app.example.com/" + "x" * 4000,
            runbook_url="https://wiki.example.com/" + "x" * 4000,
            occurred_at=AT,
        )
        message = message_for(alert)
        for utf8 in (False, True):
            raw = flatten_message(message, utf8=utf8)
            assert len(raw) <= MESSAGE_LIMIT
            assert _lines_fit(raw)


def _squeezed(text: str) -> str:
    return "".join(text.split())


def _lines_fit(raw: bytes) -> bool:
    return all(len(line) <= 998 for line in raw.split(b"\r\n"))


CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
"""What must never reach a mail: control characters but tab and newline, bidi overrides,
lone surrogates."""


def assert_valid_message(alert: Alert, recipients: tuple[str, ...]) -> None:
    """``alert`` renders to an e-mail whose subject is one line of at most SUBJECT_LIMIT
    characters, which serialises for SMTP (8-bit or not, lines at most 998 bytes) within
    MESSAGE_LIMIT bytes, and parses back to the same subject with a text and an HTML part.
    """
    message = build_message(alert, sender=SENDER, recipients=recipients, now=AT)
    subject = message["Subject"]
    assert "\r" not in subject
    assert "\n" not in subject
    assert 0 < len(subject) <= SUBJECT_LIMIT
    prefix = "[Chaperone Resolved] " if alert.is_resolved else "[Chaperone Alert] "
    assert subject.startswith(prefix)
    for utf8 in (False, True):
        raw = flatten_message(message, utf8=utf8)
        assert len(raw) <= MESSAGE_LIMIT
        assert _lines_fit(raw)
    raw = message.as_bytes(policy=email.policy.SMTP)
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    # Python's header folding may drop a space where it splits between two encoded
    # words (a CPython quirk, not an injection): compare the words.
    assert _squeezed(parsed["Subject"]) == _squeezed(subject)
    assert parsed["To"] == ", ".join(recipients)
    content = render(alert)
    assert "\r" not in content.text + content.html
    text, html = parts(parsed)
    # On the wire every line ends in CRLF; the bodies are otherwise what was rendered.
    assert (text.replace("\r\n", "\n"), html.replace("\r\n", "\n")) == (
        content.text,
        content.html,
    )


class TestAnyAlert:
    """Properties that hold for every alert, however long or strange."""

    @PROPERTY
    @given(alert=alerts(), recipients=st.sampled_from([RECIPIENTS[:1], RECIPIENTS]))
    @example(
        alert=Alert(
            type="job_stuck",
            key="k",
            headline="\u2028",
            title="\r\n\x00 \x85",
            summary="",
            occurred_at=AT,
        ),
        recipients=RECIPIENTS,
    )
    def test_renders_a_valid_message_within_limits(
        self, alert: Alert, recipients: tuple[str, ...]
    ) -> None:
        """Any alert renders to an e-mail whose subject is one line of at most
        SUBJECT_LIMIT characters, which serialises for SMTP (8-bit or not, lines at most
        998 bytes) within MESSAGE_LIMIT bytes, and parses back to the same subject with
        a text and an HTML part.
        """
        assert_valid_message(alert, recipients)

    @PROPERTY
    @given(alert=hostile_alerts(), recipients=st.sampled_from([RECIPIENTS[:1], RECIPIENTS]))
    def test_renders_any_hostile_alert(self, alert: Alert, recipients: tuple[str, ...]) -> None:
        """Any hostile alert (lone surrogates, escape sequences, bidi overrides, markup,
        a megabyte of text) renders to a valid e-mail within limits, no control character
        or bidi override in its subject or bodies.
        """
        assert_valid_message(alert, recipients)
        content = render(alert)
        assert not CONTROL.search(content.subject + content.text + content.html)

    @settings(PROPERTY, max_examples=50)
    @given(alert=alerts())
    def test_html_never_carries_markup_from_the_alert(self, alert: Alert) -> None:
        """Whatever text the alert holds, the HTML body's tags are only the template's."""
        marked = attrs.evolve(
            alert,
            title=alert.title + "<b>",
            summary="<i>" + alert.summary,
            fields=[*alert.fields, ("<u>", "<s>")],
        )
        html = render(marked).html
        for tag in ("<b>", "<i>", "<u>", "<s>"):
            assert tag not in html

    def test_a_lone_surrogate_is_accepted(self) -> None:
        """Lone surrogates in every text, even past the alert's own cleaning, render to
        a message that encodes to UTF-8.
        """
        alert = strategies.alert_with_raw_surrogates(AT)
        message = message_for(alert)
        assert "\ufffd" in parts(message)[0]
        assert message.as_bytes()
