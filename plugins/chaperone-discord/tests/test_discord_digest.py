r"""Digests through the ``discord`` channel: the held alerts of a group become webhook
messages within Discord's limits that together name every alert, none counted away as
"more fields not shown".
"""

from __future__ import annotations

from typing import Any

from chaperone_discord import render
from chaperone_discord._limits import limit_problems
from hypothesis import given
from hypothesis import strategies as st

from chaperone import Alert
from chaperone.testing import strategies
from chaperone.testing.digests import (
    assert_each_listed_once,
    digest_sizes,
    held_group_settings,
    held_groups,
    held_stuck_alerts,
    sample_digests,
)

PROPERTY = held_group_settings(max_examples=40)


def fields_of(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """Every field of every embed."""
    return [field for embed in payload["embeds"] for field in embed.get("fields", [])]


def assert_within_limits(digest: Alert, payload: dict[str, Any]) -> None:
    """Discord's limits, and every entry shown whole: one field each, none cut or
    counted away.
    """
    assert limit_problems(payload) == []
    shown = fields_of(payload)
    assert [(field["name"], field["value"]) for field in shown] == list(digest.fields)


class TestDigestMessages:
    """What Discord is sent for a group's digest."""

    def test_a_hundred_held_alerts(self) -> None:
        """96 held stuck alerts make five messages of 20 or fewer fields, within every
        limit, naming each alert once; the title says what they stand for.
        """
        held = held_stuck_alerts(96)
        digests = sample_digests(held)
        payloads = [render(digest) for digest in digests]
        assert len(payloads) == 5
        for digest, payload in zip(digests, payloads, strict=True):
            assert_within_limits(digest, payload)
        assert_each_listed_once(held, payloads)
        # The underscore is escaped: Discord shows it as written, never as emphasis.
        assert payloads[0]["embeds"][0]["title"].endswith(
            "96 job\\_stuck alerts for App\\Jobs\\ImportFeed in the last 10 minutes (part 1 of 5)"
        )

    @PROPERTY
    @given(
        held=held_groups(
            titles=st.one_of(
                strategies.texts(min_size=1),
                st.text(st.characters(min_codepoint=0x1F300, max_codepoint=0x1F6FF), min_size=300),
            )
        ),
        size=digest_sizes(),
    )
    def test_any_group_fits(self, held: list[Alert], size: int) -> None:
        """Whatever the job class, the alerts' titles (emoji count twice in Discord) and
        digest_size, every message fits Discord with every entry whole, and every held
        alert is named in exactly one.
        """
        digests = sample_digests(held, size=size)
        payloads = [render(digest) for digest in digests]
        for payload in payloads:
            assert limit_problems(payload) == []
        assert_each_listed_once(held, payloads)
        for digest, payload in zip(digests, payloads, strict=True):
            shown = fields_of(payload)
            assert len(shown) == len(digest.fields)
            assert all("not shown" not in field["value"] for field in shown)
