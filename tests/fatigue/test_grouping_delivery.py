r"""Issue 5's done-means for grouping: 100 stuck alerts for one job class inside 10 minutes
reach a channel as at most 5 individual alerts plus digests that together name all 100,
through a recording channel and through a real webhook channel over loopback HTTP.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from chaperone import ManualClock, Settings
from chaperone.testing.digests import JOB_CLASS, WINDOW_STARTED, raise_stuck_alerts
from chaperone.testing.servers import RecordingServer
from helpers.cli import require_fixture_plugins
from helpers.fatigue import RecordingChannel, entry_keys, runtime_with

STUCK_COUNT = 100
"""100 alerts 6 s apart (raise_stuck_alerts' spacing): the last one at 9 min 54 s, inside
the 10-minute window."""


class TestHundredStuckAlerts:
    """The done-means: at most 5 alone, the rest in digests naming every one."""

    def test_through_a_recording_channel(self) -> None:
        """Four alerts go out alone; five digests of at most 20 list the other 96, each
        once, titled with the count, the job class and the window.
        """
        clock = ManualClock(WINDOW_STARTED)
        recorder = RecordingChannel("sink")
        settings = Settings(channels=("sink",), store_url="memory://")
        with runtime_with(settings, clock, recorder) as runtime:
            ids = raise_stuck_alerts(runtime, clock, STUCK_COUNT)
        individual = recorder.individual
        digests = recorder.digests
        assert len(individual) <= 5
        assert individual == ids[:4]
        assert sorted(recorder.digested + individual) == sorted(ids)
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
        clock = ManualClock(WINDOW_STARTED)
        settings = Settings(
            channels=("webhook",),
            store_url="memory://",
            environ={"CHAPERONE_WEBHOOK_URL": server.url_for("/hook")},
        )
        with runtime_with(settings, clock, testwebhook) as runtime:
            ids = raise_stuck_alerts(runtime, clock, STUCK_COUNT)
        bodies: list[Any] = [request.json() for request in server.requests]
        alerts = [body["alert"] for body in bodies]
        individual = [alert["key"] for alert in alerts if alert["digest_of"] is None]
        digests = [alert for alert in alerts if alert["digest_of"] is not None]
        assert individual == ids[:4]
        listed = [key for digest in digests for key in entry_keys(digest["fields"])]
        assert sorted(individual + listed) == sorted(ids)
        assert all(digest["type"] == "job_stuck" for digest in digests)
        assert all(digest["job_class"] == JOB_CLASS for digest in digests)
        assert {digest["digest_of"] for digest in digests} == {96}
        assert all(request.path == "/hook" for request in server.requests)
