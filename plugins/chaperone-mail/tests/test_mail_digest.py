r"""Digests through the ``mail`` channel: the held alerts of a group become e-mails within
the channel's limits that together name every alert, none cut off as "more fields".
"""

from __future__ import annotations

from email.headerregistry import Address
from email.message import EmailMessage
from operator import attrgetter

from aiosmtplib.email import flatten_message
from chaperone_mail import build_message, render
from chaperone_mail._render import MAX_FIELDS, MESSAGE_LIMIT, SUBJECT_LIMIT
from hypothesis import given

from chaperone import Alert
from chaperone.testing.digests import (
    WINDOW_CLOSED,
    assert_each_listed_once,
    digest_sizes,
    held_group_settings,
    held_groups,
    held_stuck_alerts,
    sample_digests,
)

SENDER = Address(display_name="Chaperone", username="alerts", domain="example.com")
RECIPIENTS = ("ops@example.com",)
PROPERTY = held_group_settings(max_examples=30)


def assert_within_limits(digest: Alert) -> EmailMessage:
    """The channel's limits, and no entry left out for want of room; return the e-mail."""
    assert len(digest.fields) <= MAX_FIELDS
    message = build_message(digest, sender=SENDER, recipients=RECIPIENTS, now=WINDOW_CLOSED)
    assert len(message["Subject"]) <= SUBJECT_LIMIT
    assert "\n" not in message["Subject"]
    for utf8 in (False, True):
        assert len(flatten_message(message, utf8=utf8)) <= MESSAGE_LIMIT
    content = render(digest)
    assert "not shown" not in content.text, "a digest entry was hidden"
    return message


class TestDigestMails:
    """What the mail channel sends for a group's digest."""

    def test_a_hundred_held_alerts(self) -> None:
        """96 held stuck alerts make five e-mails of at most 20 entries, within every
        limit, naming each alert once; the subject says what the digest stands for.
        """
        held = held_stuck_alerts(96)
        digests = sample_digests(held)
        assert len(digests) == 5
        messages = [assert_within_limits(digest) for digest in digests]
        contents = [render(digest) for digest in digests]
        assert_each_listed_once(held, contents, attrgetter("text"))
        assert_each_listed_once(held, contents, attrgetter("html"))
        assert messages[0]["Subject"] == (
            "[Chaperone Alert] 96 job_stuck alerts for App\\Jobs\\ImportFeed in the last "
            "10 minutes (part 1 of 5)"
        )
        text = render(digests[0]).text
        assert "96 job_stuck alerts for App\\Jobs\\ImportFeed in the last 10 minutes" in text
        assert "4 earlier alerts of this group went out one by one" in text

    @PROPERTY
    @given(held=held_groups(), size=digest_sizes())
    def test_any_group_fits(self, held: list[Alert], size: int) -> None:
        """Whatever the job class, the alerts' titles and digest_size, every e-mail fits
        the channel's limits and every held alert is named in exactly one.
        """
        digests = sample_digests(held, size=size)
        for digest in digests:
            assert_within_limits(digest)
        contents = [render(digest) for digest in digests]
        assert_each_listed_once(held, contents, attrgetter("text"))
        assert_each_listed_once(held, contents, attrgetter("html"))
