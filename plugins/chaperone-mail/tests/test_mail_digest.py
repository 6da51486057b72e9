r"""Digests through the ``mail`` channel: the held alerts of a group become e-mails within
the channel's limits that together name every alert, none cut off as "more fields".
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from types import SimpleNamespace
from typing import Any, cast

from aiosmtplib.email import flatten_message
from chaperone_mail import build_message, render
from chaperone_mail._render import MAX_FIELDS, MESSAGE_LIMIT, SUBJECT_LIMIT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaperone import Alert, AlertsGrouped, JobStuck, Settings
from chaperone.builtin.alerts import build_alerts
from chaperone.builtin.digests import digest_alerts
from chaperone.testing import strategies

AT = datetime(2024, 1, 15, 10, 0, tzinfo=UTC)
CLOSED = AT + timedelta(minutes=10)
JOB = "App\\Jobs\\ImportFeed"
SENDER = Address(display_name="Chaperone", username="alerts", domain="example.com")
RECIPIENTS = ("ops@example.com",)
PROPERTY = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def stuck_alerts(count: int, job_class: str = JOB) -> list[Alert]:
    """``count`` stuck alerts of one job class, 6 s apart, as the built-in builder makes."""
    runtime = cast(Any, SimpleNamespace(settings=Settings(app_url="https://app.example.com")))
    return [
        build_alerts(
            JobStuck(
                supervision_id=str(uuid.uuid4()),
                job_class=job_class,
                stuck_duration=timedelta(minutes=15),
                occurred_at=AT + timedelta(seconds=6 * number),
            ),
            runtime,
        )[0]
        for number in range(count)
    ]


def retitled(alert: Alert, title: str) -> Alert:
    """``alert`` with another title."""
    return Alert.from_dict({**alert.to_dict(), "title": title})


def digests_for(held: list[Alert], size: int = 20) -> list[Alert]:
    """The digest alerts for a window of ``held`` alerts, four sent before them."""
    event = AlertsGrouped(
        group_key=f"job_stuck|{JOB}",
        alerts=held,
        window=timedelta(minutes=10),
        window_started=AT,
        sent_individually=4,
        occurred_at=CLOSED,
    )
    return digest_alerts(event, CLOSED, size)


def assert_within_limits(digest: Alert) -> EmailMessage:
    """The channel's limits, and no entry left out for want of room; return the e-mail."""
    assert len(digest.fields) <= MAX_FIELDS
    message = build_message(digest, sender=SENDER, recipients=RECIPIENTS, now=CLOSED)
    assert len(message["Subject"]) <= SUBJECT_LIMIT
    assert "\n" not in message["Subject"]
    for utf8 in (False, True):
        assert len(flatten_message(message, utf8=utf8)) <= MESSAGE_LIMIT
    content = render(digest)
    assert "not shown" not in content.text, "a digest entry was hidden"
    return message


def assert_each_listed_once(held: list[Alert], digests: list[Alert]) -> None:
    """Every held alert's key is in the text and the HTML of exactly one e-mail."""
    contents = [render(digest) for digest in digests]
    for alert in held:
        assert sum(alert.key in content.text for content in contents) == 1, alert.key
        assert sum(alert.key in content.html for content in contents) == 1, alert.key


class TestDigestMails:
    """What the mail channel sends for a group's digest."""

    def test_a_hundred_held_alerts(self) -> None:
        """96 held stuck alerts make five e-mails of at most 20 entries, within every
        limit, naming each alert once; the subject says what the digest stands for.
        """
        held = stuck_alerts(96)
        digests = digests_for(held)
        assert len(digests) == 5
        messages = [assert_within_limits(digest) for digest in digests]
        assert_each_listed_once(held, digests)
        assert messages[0]["Subject"] == (
            "[Chaperone Alert] 96 job_stuck alerts for App\\Jobs\\ImportFeed in the last "
            "10 minutes (part 1 of 5)"
        )
        text = render(digests[0]).text
        assert "96 job_stuck alerts for App\\Jobs\\ImportFeed in the last 10 minutes" in text
        assert "4 earlier alerts of this group went out one by one" in text

    @PROPERTY
    @given(
        count=st.integers(min_value=1, max_value=45),
        size=st.integers(min_value=1, max_value=60),
        job_class=st.one_of(strategies.job_classes(), st.text(min_size=1, max_size=400)),
        title=strategies.texts(min_size=1),
    )
    def test_any_group_fits(self, count: int, size: int, job_class: str, title: str) -> None:
        """Whatever the job class, the alerts' titles and digest_size, every e-mail fits
        the channel's limits and every held alert is named in exactly one.
        """
        held = [retitled(alert, title) for alert in stuck_alerts(count, job_class)]
        digests = digests_for(held, size)
        for digest in digests:
            assert_within_limits(digest)
        assert_each_listed_once(held, digests)
