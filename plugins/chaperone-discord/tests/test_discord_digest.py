r"""Digests through the ``discord`` channel: the held alerts of a group become webhook
messages within Discord's limits that together name every alert, none counted away as
"more fields not shown".
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

from chaperone_discord import render
from chaperone_discord._limits import limit_problems
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaperone import Alert, AlertsGrouped, JobStuck, Settings
from chaperone.builtin.alerts import build_alerts
from chaperone.builtin.digests import digest_alerts
from chaperone.testing import strategies

AT = datetime(2024, 1, 15, 10, 0, tzinfo=UTC)
CLOSED = AT + timedelta(minutes=10)
JOB = "App\\Jobs\\ImportFeed"
PROPERTY = settings(
    max_examples=40,
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


def assert_each_listed_once(held: list[Alert], payloads: list[dict[str, Any]]) -> None:
    """Every held alert's key is in exactly one message."""
    dumped = [json.dumps(payload, ensure_ascii=False) for payload in payloads]
    for alert in held:
        assert sum(alert.key in text for text in dumped) == 1, alert.key


class TestDigestMessages:
    """What Discord is sent for a group's digest."""

    def test_a_hundred_held_alerts(self) -> None:
        """96 held stuck alerts make five messages of 20 or fewer fields, within every
        limit, naming each alert once; the title says what they stand for.
        """
        held = stuck_alerts(96)
        digests = digests_for(held)
        payloads = [render(digest) for digest in digests]
        assert len(payloads) == 5
        for digest, payload in zip(digests, payloads, strict=True):
            assert_within_limits(digest, payload)
        assert_each_listed_once(held, payloads)
        assert payloads[0]["embeds"][0]["title"].endswith(
            "96 job_stuck alerts for App\\Jobs\\ImportFeed in the last 10 minutes (part 1 of 5)"
        )

    @PROPERTY
    @given(
        count=st.integers(min_value=1, max_value=45),
        size=st.integers(min_value=1, max_value=60),
        job_class=st.one_of(strategies.job_classes(), st.text(min_size=1, max_size=400)),
        title=st.one_of(
            strategies.texts(min_size=1),
            st.text(st.characters(min_codepoint=0x1F300, max_codepoint=0x1F6FF), min_size=300),
        ),
    )
    def test_any_group_fits(self, count: int, size: int, job_class: str, title: str) -> None:
        """Whatever the job class, the alerts' titles (emoji count twice in Discord) and
        digest_size, every message fits Discord with every entry whole, and every held
        alert is named in exactly one.
        """
        held = [retitled(alert, title) for alert in stuck_alerts(count, job_class)]
        digests = digests_for(held, size)
        payloads = [render(digest) for digest in digests]
        for payload in payloads:
            assert limit_problems(payload) == []
        assert_each_listed_once(held, payloads)
        for digest, payload in zip(digests, payloads, strict=True):
            shown = fields_of(payload)
            assert len(shown) == len(digest.fields)
            assert all("not shown" not in field["value"] for field in shown)
