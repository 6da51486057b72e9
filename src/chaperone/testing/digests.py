r"""Sample digests for a channel's tests: a group's held alerts, and the digest alerts the
core makes of them when the group's window closes.

A channel plugin checks that it renders every digest within its service's limits and
names every alert it stands for::

    from hypothesis import given
    from chaperone.testing import digests

    def test_a_hundred_held_alerts():
        held = digests.held_stuck_alerts(96)
        payloads = [render(digest) for digest in digests.sample_digests(held)]
        assert len(payloads) == 5  # 20 entries a digest at most
        digests.assert_each_listed_once(held, payloads)

    @digests.held_group_settings(max_examples=30)
    @given(held=digests.held_groups(), size=digests.digest_sizes())
    def test_any_group_fits(held, size):
        for digest in digests.sample_digests(held, size=size):
            ...

The alerts are the built-in builder's and the digests are
:func:`~chaperone._digests.digest_alerts`' own, grouped as the default
``alerting.grouping.by`` groups them: what the channel is sent in production. Every
held alert's :attr:`~chaperone.Alert.key` is a UUID, so a test can look for each one in
what the channel sends.

:func:`raise_stuck_alerts` goes the whole way instead: it raises stuck alerts through a
runtime with your channel and lets the group's window close, so the channel's service
receives the first alerts one by one and then the digests of the rest.

Needs hypothesis: install ``chaperone-core[testing]``.
"""

# ruff: noqa: S101 - a test helper states its checks with assert, as pytest expects

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

import hypothesis
from hypothesis import HealthCheck
from hypothesis import strategies as st

from chaperone._alerts import Alert
from chaperone._digests import digest_alerts
from chaperone._events import AlertsGrouped, JobStuck
from chaperone.builtin.alert_builder import build_alerts
from chaperone.builtin.alert_grouping import group_key
from chaperone.config import GroupingSettings, Settings
from chaperone.testing.strategies import job_classes, texts

if TYPE_CHECKING:
    from chaperone._chaperone import Chaperone
    from chaperone._clock import ManualClock
    from chaperone._runtime import Runtime

__all__ = [
    "JOB_CLASS",
    "SENT_INDIVIDUALLY",
    "SPACING",
    "WINDOW",
    "WINDOW_CLOSED",
    "WINDOW_STARTED",
    "assert_each_listed_once",
    "assert_listed_once",
    "digest_sizes",
    "held_group_settings",
    "held_groups",
    "held_stuck_alerts",
    "raise_stuck_alerts",
    "sample_digests",
]

JOB_CLASS = "App\\Jobs\\ImportFeed"
"""The job class of :func:`held_stuck_alerts` unless told otherwise."""
WINDOW_STARTED = datetime(2024, 1, 15, 10, 0, tzinfo=UTC)
"""When the sample group's window opened: the first held alert's time."""
WINDOW = timedelta(minutes=10)
"""How long the sample group's window lasts (the default ``alerting.grouping.window``)."""
WINDOW_CLOSED = WINDOW_STARTED + WINDOW
"""When the sample group's window closed: the digests' time."""
SPACING = timedelta(seconds=6)
"""The time between two held alerts: 100 of them fit in :data:`WINDOW`."""
SENT_INDIVIDUALLY = 4
"""How many alerts of the sample group went out one by one before the rest were held."""
_STUCK_FOR = timedelta(minutes=15)
_APP_URL = "https://app.example.com"


def held_stuck_alerts(count: int, job_class: str = JOB_CLASS) -> list[Alert]:
    """``count`` job-stuck alerts of ``job_class``, :data:`SPACING` apart from
    :data:`WINDOW_STARTED`, as the built-in alert builder makes them; each one's key is a
    fresh UUID (its supervision id).
    """
    runtime = cast("Runtime", SimpleNamespace(settings=Settings(app_url=_APP_URL)))
    held: list[Alert] = []
    for number in range(count):
        event = JobStuck(
            supervision_id=str(uuid.uuid4()),
            job_class=job_class,
            stuck_duration=_STUCK_FOR,
            occurred_at=WINDOW_STARTED + SPACING * number,
        )
        built = build_alerts(event, runtime)
        if not built:
            raise RuntimeError("the built-in alert builder made no alert of a JobStuck")
        held.append(built[0])
    return held


def sample_digests(held: Sequence[Alert], size: int = 20) -> list[Alert]:
    """The digest alerts for a window of ``held`` alerts that closed at
    :data:`WINDOW_CLOSED`: at most ``size`` alerts to a digest (the
    ``alerting.grouping.digest_size`` setting), grouped under the first alert's default
    group key, :data:`SENT_INDIVIDUALLY` alerts of the group sent before them.
    """
    event = AlertsGrouped(
        group_key=group_key(held[0], GroupingSettings().by) if held else "",
        alerts=tuple(held),
        window=WINDOW,
        window_started=WINDOW_STARTED,
        sent_individually=SENT_INDIVIDUALLY,
        occurred_at=WINDOW_CLOSED,
    )
    return digest_alerts(event, WINDOW_CLOSED, size)


def assert_listed_once(held: Sequence[Alert], texts: Sequence[str]) -> None:
    """Assert that every held alert's key occurs in exactly one of ``texts``: what the
    channel sent for each digest (or the part of it that lists the entries), as text.
    """
    for alert in held:
        found = sum(alert.key in text for text in texts)
        assert found == 1, f"the held alert {alert.key} is in {found} of the digests, not one"


def assert_each_listed_once(
    held: Sequence[Alert], sent: Sequence[Any], part: Callable[[Any], Any] | None = None
) -> None:
    """Assert that every held alert's key occurs in exactly one of the messages ``sent``
    for the digests: each message, or the ``part`` of it that lists the entries (the
    details of an event, the text of an e-mail), read as text; anything but a string is
    read as its JSON.
    """
    pieces = [message if part is None else part(message) for message in sent]
    assert_listed_once(
        held,
        [
            piece if isinstance(piece, str) else json.dumps(piece, ensure_ascii=False)
            for piece in pieces
        ],
    )


def _retitled(alerts: list[Alert], title: str) -> list[Alert]:
    return [Alert.from_dict({**alert.to_dict(), "title": title}) for alert in alerts]


def held_groups(
    titles: st.SearchStrategy[str] | None = None, *, max_count: int = 45
) -> st.SearchStrategy[list[Alert]]:
    """Groups of held alerts for property tests: 1 to ``max_count`` stuck alerts of one job
    class (a realistic name, or any text up to 400 characters), all titled with one text
    drawn from ``titles`` (by default :func:`chaperone.testing.strategies.texts`: any
    Unicode, sometimes tens of thousands of characters).
    """
    held = st.builds(
        held_stuck_alerts,
        st.integers(min_value=1, max_value=max_count),
        st.one_of(job_classes(), st.text(min_size=1, max_size=400)),
    )
    if titles is None:
        titles = texts(min_size=1)
    return st.builds(_retitled, held, titles)


def held_group_settings(max_examples: int = 30) -> hypothesis.settings:
    """Settings for a property test drawing :func:`held_groups`: ``max_examples`` of
    them, no deadline and no ``too_slow`` or ``data_too_large`` health check (a group is
    a large draw, and its digests take a while to build and render).
    """
    return hypothesis.settings(
        max_examples=max_examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def digest_sizes() -> st.SearchStrategy[int]:
    """``alerting.grouping.digest_size`` values, 1 to 60: past the 20 entries a digest
    lists at most, which the core enforces whatever the setting says.
    """
    return st.integers(min_value=1, max_value=60)


def raise_stuck_alerts(
    runtime: Chaperone, clock: ManualClock, count: int = 100, job_class: str = JOB_CLASS
) -> list[str]:
    """Dispatch ``count`` :class:`~chaperone.JobStuck` events of ``job_class`` through
    ``runtime``, :data:`SPACING` apart from the time of ``clock`` (the runtime's), a
    :class:`~chaperone.Monitor` ticking before each as ``chaperone monitor`` does; then
    move ``clock`` to the end of the group's window and tick once more, so the alerts the
    window held go out as digests. Return the supervision ids (the alerts' keys) in order.

    Raises ValueError when the alerts would not fit in one window, RuntimeError when the
    runtime skips a dispatch (alerting disabled).
    """
    from chaperone._monitor import Monitor  # the delivery machinery: only where needed

    window = runtime.settings.grouping.window
    if SPACING * (count - 1) >= window:
        raise ValueError(f"{count} alerts {SPACING} apart do not fit in a {window} window")
    ids = [str(uuid.uuid4()) for _ in range(count)]
    opened = clock.now()
    monitor = Monitor(runtime)
    for number, supervision_id in enumerate(ids):
        if number:
            clock.advance(SPACING)
        monitor.tick()
        report = runtime.dispatch(
            JobStuck(supervision_id=supervision_id, job_class=job_class, stuck_duration=_STUCK_FOR)
        )
        if report.skipped is not None:
            raise RuntimeError(f"the runtime skipped a JobStuck: {report.skipped}")
    clock.advance(opened + window - clock.now())
    monitor.tick()
    return ids
