"""The runbook link in Opsgenie: a ``Runbook URL`` detail and a line of the description,
whether the alert brings it, its type's ``[alerting.runbooks]`` entry gives it, or the
route that sent it there does.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import chaperone_opsgenie
from chaperone_opsgenie._render import create_payload

from chaperone import Alert, Chaperone, JobStuck, ManualClock, PluginHost, Priority, Settings
from chaperone._matching import parse_match
from chaperone.config import PrioritySettings, Route
from chaperone.store import MemoryStore
from chaperone.testing.servers import RecordingServer, Reply

AT = datetime(2024, 1, 15, 10, 0, tzinfo=UTC)
API_KEY = "3f9a1c2e-7b4d-4e8f-a1b2-c3d4e5f60718"
RUNBOOK = "https://docs.example.com/runbooks/job-stuck"
ROUTE_RUNBOOK = "https://docs.example.com/runbooks/payments"


def alert(runbook_url: str | None) -> Alert:
    """A stuck-job alert with ``runbook_url``."""
    return Alert(
        type="job_stuck",
        key="sup-1",
        headline="Job Stuck",
        title="Job Stuck: App\\Jobs\\ImportFeed",
        summary="A supervised job has been detected as stuck.",
        occurred_at=AT,
        job_class="App\\Jobs\\ImportFeed",
        runbook_url=runbook_url,
    )


class TestPayload:
    """The create request shows the runbook twice: as a detail and in the description."""

    def test_runbook_detail(self) -> None:
        """``details["Runbook URL"]`` is the runbook, whole."""
        assert create_payload(alert(RUNBOOK))["details"]["Runbook URL"] == RUNBOOK

    def test_runbook_line_in_the_description(self) -> None:
        """The description ends with a ``Runbook:`` line."""
        description = create_payload(alert(RUNBOOK))["description"]
        assert description.splitlines()[-1] == f"Runbook: {RUNBOOK}"

    def test_no_runbook_no_detail(self) -> None:
        """Without a runbook there is no such detail and no such line."""
        payload = create_payload(alert(None))
        assert "Runbook URL" not in payload["details"]
        assert "Runbook:" not in payload["description"]


class TestFromConfig:
    """A runbook from the config reaches the Opsgenie request through delivery."""

    def deliver(self, job_class: str) -> dict[str, Any]:
        """Dispatch a stuck ``job_class`` to a recording Opsgenie; return the body.

        ``*Payment*`` is high priority and takes the ``payments`` route, which has its
        own runbook; everything else takes the default route, with the type's runbook.
        """
        with RecordingServer(default=Reply(status=202, body='{"result": "ok"}')) as server:
            settings = Settings(
                channels=("opsgenie",),
                store_url="memory://",
                channel_sections={"opsgenie": {"api_key": API_KEY, "api_url": server.url}},
                runbooks={"job_stuck": RUNBOOK},
                priority=PrioritySettings(patterns={Priority.HIGH: ("*Payment*",)}),
                routes=(
                    Route(
                        name="payments",
                        match=parse_match({"priority": "high"}),
                        channels=("opsgenie",),
                        runbook_url=ROUTE_RUNBOOK,
                    ),
                ),
            )
            clock = ManualClock(AT)
            plugins = PluginHost(entry_points=False, extra=[("opsgenie", chaperone_opsgenie)])
            with Chaperone(settings, clock=clock, store=MemoryStore(clock), plugins=plugins) as rt:
                report = rt.dispatch(
                    JobStuck(
                        supervision_id="sup-1",
                        job_class=job_class,
                        stuck_duration=timedelta(minutes=5),
                    )
                )
            assert report.alerts[0].delivered, report
            [request] = server.requests
        body: dict[str, Any] = json.loads(request.body)
        return body

    def test_type_runbook(self) -> None:
        """The default route carries the ``[alerting.runbooks]`` entry of the type."""
        body = self.deliver("App\\Jobs\\ImportFeed")
        assert body["details"]["Runbook URL"] == RUNBOOK

    def test_route_runbook(self) -> None:
        """A route's ``runbook_url`` wins over the type's."""
        body = self.deliver("App\\Jobs\\PaymentSync")
        assert body["details"]["Runbook URL"] == ROUTE_RUNBOOK
        assert body["description"].endswith(f"Runbook: {ROUTE_RUNBOOK}")
