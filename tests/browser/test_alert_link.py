"""The "View Job Details" link of a real alert, opened in a real browser: ``chaperone
serve`` (users from a config file) and ``chaperone run`` with a silent child share a
SQLite store; the run's job_stuck alert reaches a loopback PagerDuty, and the browser
follows the link it carries to the login page, then to the job page.
"""

from __future__ import annotations

import re
import signal
import subprocess
from collections.abc import Iterator
from typing import Any, cast

import attrs
import pytest
from playwright.sync_api import Page, expect

from chaperone.testing.servers import RecordedRequest, RecordingServer, Reply
from chaperone.web._passwords import hash_password
from helpers.cli import clean_environ, start_cli
from helpers.serve import Served, serving
from helpers.web_browser import PASSWORD, ROUTING_KEY, USER, sign_in, users_config

JOB = "nightly-import"
ALERT_TIMEOUT = 30.0
"""Seconds the stuck alert may take to reach PagerDuty (stuck after 2 s of silence)."""


@attrs.frozen
class Scene:
    """A running serve, a running stuck job, and the trigger PagerDuty received."""

    served: Served
    job: subprocess.Popen[str]
    trigger: RecordedRequest

    @property
    def base(self) -> str:
        """The pages' root URL."""
        return f"{self.served.url}/chaperone"

    @property
    def event(self) -> dict[str, Any]:
        """The trigger's JSON body."""
        return cast(dict[str, Any], self.trigger.json())


def _accepted(request: RecordedRequest, _base_url: str) -> str:
    return '{"status": "success", "message": "Event processed"}'


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    """``chaperone serve`` on port 0; then ``chaperone run --heartbeat-interval 1 --
    sleep 60`` with CHAPERONE_APP_URL the serve's root, its job_stuck alert awaited at
    the loopback PagerDuty. The job is stopped (SIGTERM) after the module.
    """
    folder = tmp_path_factory.mktemp("alert-link")
    (folder / "chaperone.toml").write_text(users_config(hash_password(PASSWORD)), "utf-8")
    with RecordingServer(default=Reply(status=202, body=_accepted)) as pagerduty:
        env = clean_environ(
            folder,
            NO_COLOR="1",
            CHAPERONE_ALERT_CHANNELS="pagerduty,database",
            CHAPERONE_PAGERDUTY_ROUTING_KEY=ROUTING_KEY,
            CHAPERONE_PAGERDUTY_EVENTS_URL=pagerduty.url_for("/v2/enqueue"),
        )
        with serving(env, folder) as served:
            args = ("run", "--name", JOB, "--heartbeat-interval", "1", "--missed-heartbeats", "2")
            job = start_cli(
                (*args, "--", "sleep", "60"),
                cwd=folder,
                env={**env, "CHAPERONE_APP_URL": served.url},
            )
            try:
                received = pagerduty.wait_for_requests(1, timeout=ALERT_TIMEOUT)
                if not received:
                    job.kill()
                    pytest.fail(f"no alert reached PagerDuty:\n{job.communicate()}")
                yield Scene(served, job, received[0])
            finally:
                if job.poll() is None:
                    job.send_signal(signal.SIGTERM)
                job.communicate(timeout=30)


class TestAlertLink:
    """From the alert's link to the job page."""

    def test_the_link_leads_through_the_login_to_the_job(self, scene: Scene, page: Page) -> None:
        """The link PagerDuty received opens the login page; signing in lands on the job
        page: its name, stuck, its alert and the alert's delivery to pagerduty.
        """
        event = scene.event
        assert event["event_action"] == "trigger"
        assert event["dedup_key"].startswith("job_stuck:")
        [link] = event["links"]
        assert link["text"] == "View Job Details"
        supervision_id = event["dedup_key"].removeprefix("job_stuck:")
        assert link["href"] == f"{scene.base}/jobs/{supervision_id}"

        page.goto(link["href"])
        expect(page).to_have_url(re.compile(r"/chaperone/login\?next="))
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        sign_in(page)

        expect(page).to_have_url(link["href"])
        expect(page.get_by_role("heading", level=1)).to_contain_text(JOB)
        expect(page.get_by_role("heading", level=1).locator(".badge")).to_have_text("stuck")
        expect(page.locator(".id").first).to_contain_text(supervision_id)
        alert = page.locator("article.alert").filter(has_text="Job Stuck")
        expect(alert.first).to_be_visible()
        delivery = alert.first.locator("table.deliveries tbody tr").filter(has_text="pagerduty")
        expect(delivery).to_have_count(1)
        expect(delivery.locator(".badge")).to_have_text("delivered")


class TestOverview:
    """The overview of the same scene."""

    def test_the_overview_shows_the_stuck_job_and_its_incident(
        self, scene: Scene, page: Page
    ) -> None:
        """Signed in, the overview lists the job as stuck and its job_stuck incident as
        firing, each linking to its page.
        """
        page.goto(f"{scene.base}/")
        sign_in(page)
        expect(page.get_by_role("heading", name="Overview")).to_be_visible()
        incidents = page.locator("section").filter(
            has=page.get_by_role("heading", name=re.compile("Open incidents"))
        )
        incident = incidents.locator("tbody tr").filter(has_text=f"Job Stuck: {JOB}")
        expect(incident).to_have_count(1)
        expect(incident.locator(".badge").first).to_have_text("firing")
        jobs = page.locator("section").filter(
            has=page.get_by_role("heading", name=re.compile("Jobs that need a look"))
        )
        row = jobs.locator("tbody tr").filter(has_text=JOB)
        expect(row).to_have_count(1)
        expect(row.locator(".badge")).to_have_text("stuck")
        row.get_by_role("link", name=JOB).click()
        expect(page).to_have_url(re.compile(r"/chaperone/jobs/[0-9a-f-]+$"))


class TestLogin:
    """Signing in and out with a configured user."""

    def test_wrong_password_refused_right_one_accepted_then_sign_out(
        self, scene: Scene, page: Page
    ) -> None:
        """A wrong password gets the form again with a message and no way in; the right
        one gets the page asked for; Sign out returns to the login page, and the pages ask
        for it again.
        """
        page.goto(f"{scene.base}/incidents")
        sign_in(page, password=PASSWORD + "!")
        expect(page.get_by_role("alert")).to_have_text("Wrong name or password.")
        expect(page.get_by_label("Name")).to_have_value(USER)
        expect(page.get_by_role("navigation", name="Pages")).to_have_count(0)

        sign_in(page)
        expect(page).to_have_url(f"{scene.base}/incidents")
        expect(page.locator(".who .user")).to_contain_text(USER)

        page.get_by_role("button", name="Sign out").click()
        expect(page).to_have_url(f"{scene.base}/login")
        page.goto(f"{scene.base}/incidents")
        expect(page).to_have_url(re.compile(r"/chaperone/login\?next="))
