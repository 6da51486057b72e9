r"""Issue 5's done-means for grouping: 100 stuck alerts for one job class inside 10 minutes
reach a channel as at most 5 individual alerts plus digests that together name all 100,
through a recording channel and through a real webhook channel over loopback HTTP.
"""

from __future__ import annotations

import importlib
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any, Self

import pytest

import chaperone
from chaperone import (
    Alert,
    Channel,
    ChannelSettings,
    JobStuck,
    ManualClock,
    Monitor,
    Outcome,
    PluginHost,
    Runtime,
    SendContext,
    Settings,
)
from chaperone.store import MemoryStore
from chaperone.testing.servers import RecordingServer
from helpers.cli import require_fixture_plugins

AT = datetime(2024, 1, 15, 10, 0, tzinfo=UTC)
JOB = "App\\Jobs\\ImportFeed"
ENTRY_KEY = re.compile(r"\(key (?P<key>[^()]*)\)$")
STUCK_COUNT = 100
SPACING = timedelta(seconds=6)
"""100 alerts 6 s apart: the last one at 9 min 54 s, inside the 10-minute window."""


class Recorder:
    """A plugin with one channel, ``sink``, that records every alert it is sent."""

    def __init__(self) -> None:
        self.sent: list[Alert] = []
        recorder = self

        class Recording(Channel):
            name = "sink"

            @classmethod
            def from_settings(cls, settings: ChannelSettings) -> Self:
                return cls()

            async def send(self, alert: Alert, context: SendContext) -> Outcome:
                recorder.sent.append(alert)
                return Outcome.delivered()

        self.channel_class = Recording

    @chaperone.hookimpl
    def chaperone_register_channels(self, register: Callable[[type[Channel]], None]) -> None:
        register(self.channel_class)


def entry_keys(fields: list[tuple[str, str]] | list[list[str]]) -> list[str]:
    """The member keys a digest's fields list."""
    keys = []
    for _time, entry in fields:
        found = ENTRY_KEY.search(entry)
        assert found, f"a digest entry without a key: {entry!r}"
        keys.append(found["key"])
    return keys


def raise_stuck_alerts(runtime: Runtime, clock: ManualClock) -> list[str]:
    """Dispatch 100 JobStuck events of one job class inside 10 minutes, the monitor ticking
    before each, then let the window close and tick; return the supervision ids.
    """
    ids = [str(uuid.uuid4()) for _ in range(STUCK_COUNT)]
    monitor = Monitor(runtime)
    for number, supervision_id in enumerate(ids):
        if number:
            clock.advance(SPACING)
        monitor.tick()
        report = runtime.dispatch(
            JobStuck(
                supervision_id=supervision_id,
                job_class=JOB,
                stuck_duration=timedelta(minutes=15),
            )
        )
        assert report.skipped is None
    clock.advance(timedelta(minutes=10) - SPACING * (STUCK_COUNT - 1))
    monitor.tick()
    return ids


class TestHundredStuckAlerts:
    """The done-means: at most 5 alone, the rest in digests naming every one."""

    def test_through_a_recording_channel(self) -> None:
        """Four alerts go out alone; five digests of at most 20 list the other 96, each
        once, titled with the count, the job class and the window.
        """
        clock = ManualClock(AT)
        recorder = Recorder()
        with Runtime(
            Settings(channels=("sink",), store_url="memory://"),
            clock=clock,
            store=MemoryStore(clock),
            plugins=PluginHost(entry_points=False, extra=[("sink", recorder)]),
        ) as runtime:
            ids = raise_stuck_alerts(runtime, clock)
        individual = [alert for alert in recorder.sent if not alert.is_digest]
        digests = [alert for alert in recorder.sent if alert.is_digest]
        assert len(individual) <= 5
        assert [alert.key for alert in individual] == ids[:4]
        listed = [key for digest in digests for key in entry_keys(list(digest.fields))]
        assert sorted(listed + [alert.key for alert in individual]) == sorted(ids)
        assert len(digests) == 5
        assert all(len(digest.fields) <= 20 for digest in digests)
        assert digests[0].title == (
            "96 job_stuck alerts for App\\Jobs\\ImportFeed in the last 10 minutes (part 1 of 5)"
        )
        assert all(digest.digest_of == 96 for digest in digests)
        assert len({digest.key for digest in digests}) == 5


@pytest.fixture(scope="module")
def testwebhook() -> ModuleType:
    """The fixture plugin providing channel ``webhook`` (fails if it is not installed)."""
    require_fixture_plugins()
    return importlib.import_module("chaperone_testwebhook")


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    with RecordingServer() as recording:
        yield recording


class TestOverHttp:
    """Digests go over the wire like any alert."""

    def test_webhook_receives_four_alerts_and_the_digests(
        self, testwebhook: ModuleType, server: RecordingServer
    ) -> None:
        """A real webhook channel posting to a loopback server receives the first four
        stuck alerts one by one and then digests that, together, name the other 96.
        """
        clock = ManualClock(AT)
        settings = Settings(
            channels=("webhook",),
            store_url="memory://",
            environ={"CHAPERONE_WEBHOOK_URL": server.url_for("/hook")},
        )
        with Runtime(
            settings,
            clock=clock,
            store=MemoryStore(clock),
            plugins=PluginHost(entry_points=False, extra=[("webhook", testwebhook)]),
        ) as runtime:
            ids = raise_stuck_alerts(runtime, clock)
        bodies: list[Any] = [request.json() for request in server.requests]
        alerts = [body["alert"] for body in bodies]
        individual = [alert["key"] for alert in alerts if alert["digest_of"] is None]
        digests = [alert for alert in alerts if alert["digest_of"] is not None]
        assert individual == ids[:4]
        listed = [key for digest in digests for key in entry_keys(digest["fields"])]
        assert sorted(individual + listed) == sorted(ids)
        assert all(digest["type"] == "job_stuck" for digest in digests)
        assert all(digest["job_class"] == JOB for digest in digests)
        assert {digest["digest_of"] for digest in digests} == {96}
        assert all(request.path == "/hook" for request in server.requests)
