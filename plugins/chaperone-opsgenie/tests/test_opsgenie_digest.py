r"""Digests through the ``opsgenie`` channel: the held alerts of a group become create
requests within Opsgenie's limits that together name every alert, each digest an
Opsgenie alert of its own.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any

from chaperone_opsgenie._render import (
    ALIAS_LIMIT,
    DESCRIPTION_LIMIT,
    DETAILS_TOTAL_LIMIT,
    MESSAGE_LIMIT,
    create_payload,
)
from hypothesis import given

from chaperone import Alert
from chaperone.channels.text import utf16_length
from chaperone.testing.digests import (
    JOB_CLASS,
    assert_each_listed_once,
    digest_sizes,
    held_group_settings,
    held_groups,
    held_stuck_alerts,
    sample_digests,
)

PROPERTY = held_group_settings(max_examples=30)


def assert_within_limits(payload: dict[str, Any]) -> None:
    """Opsgenie's limits on a create request."""
    assert 0 < utf16_length(payload["message"]) <= MESSAGE_LIMIT
    assert 0 < utf16_length(payload["alias"]) <= ALIAS_LIMIT
    assert utf16_length(payload["description"]) <= DESCRIPTION_LIMIT
    details = payload["details"]
    total = sum(utf16_length(key) + utf16_length(value) for key, value in details.items())
    assert total <= DETAILS_TOTAL_LIMIT


class TestDigestAlerts:
    """What Opsgenie is sent for a group's digest."""

    def test_a_hundred_held_alerts(self) -> None:
        """96 held stuck alerts make five create requests within every limit, naming each
        alert once, each under its own alias; the message says what they stand for.
        """
        held = held_stuck_alerts(96)
        payloads = [create_payload(digest) for digest in sample_digests(held)]
        assert len(payloads) == 5
        for payload in payloads:
            assert_within_limits(payload)
        assert_each_listed_once(held, payloads, itemgetter("description"))
        assert_each_listed_once(held, payloads, itemgetter("details"))
        assert len({payload["alias"] for payload in payloads}) == 5
        assert payloads[0]["message"] == (
            "96 job_stuck alerts for App\\Jobs\\ImportFeed in the last 10 minutes (part 1 of 5)"
        )
        assert payloads[0]["entity"] == JOB_CLASS

    def test_two_flushes_of_one_window_make_two_alerts(self) -> None:
        """A digest flushed early and the one at the window's end have different aliases,
        so Opsgenie does not count the second on the first.
        """
        held = held_stuck_alerts(30)
        early = create_payload(sample_digests(held[:20])[0])
        late = create_payload(sample_digests(held[20:])[0])
        assert early["alias"] != late["alias"]

    @PROPERTY
    @given(held=held_groups(), size=digest_sizes())
    def test_any_group_fits(self, held: list[Alert], size: int) -> None:
        """Whatever the job class, the alerts' titles and digest_size, every request fits
        Opsgenie and every held alert is named in exactly one.
        """
        payloads = [create_payload(digest) for digest in sample_digests(held, size=size)]
        for payload in payloads:
            assert_within_limits(payload)
        assert_each_listed_once(held, payloads, itemgetter("description"))
        assert_each_listed_once(held, payloads, itemgetter("details"))
