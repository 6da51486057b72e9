"""The page routes through Starlette's TestClient on a tiny app: the routes under
``/chaperone`` on a real SQLite store, with a stand-in login and stand-in incidents.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import attrs
import pytest

import helpers.web_pages
from chaperone._alerts import Alert
from chaperone._clock import ManualClock
from chaperone._exceptions import StoreError
from chaperone.builtin.database_channel import record_delivery
from chaperone.config import HealthSettings, Settings
from chaperone.maintenance import start_window
from chaperone.schedules import Schedule, pause
from chaperone.store import SQLiteStore
from chaperone.supervision import JobRecord, Supervisor

START = datetime(2024, 1, 15, 10, 0, tzinfo=UTC)
SECRET = "s3cret-serve-token-4f1d"  # noqa: S105 - a made-up token, to look for


@attrs.define
class Site:
    """The tiny app, what it shows, and the switches of its stand-ins."""

    client: helpers.web_pages.PageClient
    context: helpers.web_pages.StandInContext
    visitor: helpers.web_pages.Visitor
    incidents: list[helpers.web_pages.StandInIncident]
    job_id: str

    def get(self, path: str) -> tuple[int, str]:
        response = self.client.get(f"{helpers.web_pages.PREFIX}{path}")
        return response.status_code, response.text


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    clock = ManualClock(START)
    path = tmp_path / "chaperone.db"
    store = SQLiteStore(path, clock, f"sqlite:///{path}")
    record = JobRecord(
        supervision_id=str(uuid.uuid4()),
        name="reports.build",
        started_at=clock.timestamp() - 600,
        heartbeat_interval=30,
        timeout=3600,
        metadata={"customer": "acme"},
    )
    Supervisor(store, clock, background=False).write(record)
    alert = Alert(
        type="job_stuck",
        key=record.supervision_id,
        headline="Job Stuck",
        title="Job Stuck: reports.build",
        summary="No heartbeat for 10 minutes.",
        occurred_at=clock.now(),
        fields={"Supervision ID": record.supervision_id},
    )
    record_delivery(
        store, clock, alert=alert, channel="slack", route="default", status="delivered", max_len=100
    )
    start_window(store, clock.now(), timedelta(hours=1), reason="deploy")
    incidents = [
        helpers.web_pages.StandInIncident(
            type="job_stuck",
            key=record.supervision_id,
            title="Job Stuck: reports.build",
            opened_at=clock.now(),
            last_alert_at=clock.now(),
            supervision_id=record.supervision_id,
            delivered_to=("slack",),
        )
    ]
    settings = Settings(
        health=HealthSettings(token=SECRET),
        channel_sections={"slack": {"webhook_url": f"https://hooks.example/{SECRET}"}},
    )
    context = helpers.web_pages.StandInContext(settings=settings, clock=clock, opened=store)
    visitor = helpers.web_pages.Visitor()
    app = helpers.web_pages.page_app(context, monkeypatch, visitor, lambda: incidents)
    client = helpers.web_pages.PageClient(app)
    yield Site(client, context, visitor, incidents, record.supervision_id)
    store.close()


PAGES = ["/", "/jobs", "/incidents", "/history", "/maintenance", "/schedules"]


class TestPages:
    @pytest.mark.parametrize("path", PAGES)
    def test_each_list_page_renders_with_the_nav(self, site: Site, path: str) -> None:
        """Every page answers 200 with the viewport meta, the nav and the user's name."""
        status, html = site.get(path)
        assert status == 200
        assert '<meta name="viewport"' in html
        for label in ("Overview", "Jobs", "Incidents", "History", "Maintenance", "Schedules"):
            assert f">{label}</a>" in html
        assert "ada" in html

    def test_the_overview(self, site: Site) -> None:
        """The overview lists the open incident, the running job, the health checks and
        the window on now, and refreshes itself."""
        status, html = site.get("/")
        assert status == 200
        assert "Job Stuck: reports.build" in html
        assert f'href="/chaperone/jobs/{site.job_id}"' in html
        assert "<strong>store</strong>" in html
        assert "Failure rate over the last 1 hour: 0.00% (unhealthy from 5%)" in html
        assert "deploy" in html
        assert 'data-refresh="15"' in html
        assert 'src="/chaperone/static/refresh.js"' in html

    def test_the_job_page(self, site: Site) -> None:
        """The page an alert links to: name, state, limits, metadata, the alert with its
        delivery, and the timeline; it refreshes itself."""
        status, html = site.get(f"/jobs/{site.job_id}")
        assert status == 200
        assert "<h1>reports.build" in html
        assert "badge-running" in html
        assert ">running</span>" in html  # the state in words, not colour alone
        for text in ("3600 s", "30 s", "customer", "acme", "slack", "started", "Timeline"):
            assert text in html
        assert "2024-01-15T09:50:00Z" in html
        assert "10 min ago" in html
        assert 'data-refresh="15"' in html

    def test_an_unknown_job_is_a_404_page(self, site: Site) -> None:
        """An id no job has gets a 404 page that says so."""
        status, html = site.get("/jobs/no-such-id")
        assert status == 404
        assert "There is no job with id no-such-id." in html

    def test_the_job_filter(self, site: Site) -> None:
        """The job list filters by state and name; an unknown state is ignored."""
        assert "reports.build" in site.get("/jobs?state=running&name=REPORTS")[1]
        assert "No job matches." in site.get("/jobs?state=failed")[1]
        assert "No job matches." in site.get("/jobs?name=nothing-like-it")[1]
        assert "reports.build" in site.get("/jobs?state=sleeping")[1]

    def test_a_long_job_list_is_cut(self, site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
        """Past the list's limit, the newest jobs are shown and the rest counted."""
        routes = helpers.web_pages.page_routes()
        monkeypatch.setattr(routes, "JOB_LIST_LIMIT", 0)
        html = site.get("/jobs")[1]
        assert "reports.build" not in html
        assert "1 more match" in html

    def test_history_pages(self, site: Site) -> None:
        """History shows page 1 by default and any bad page number as page 1."""
        for query in ("", "?page=1", "?page=abc", "?page=-4"):
            status, html = site.get(f"/history{query}")
            assert status == 200
            assert "page 1" in html
            assert "Job Stuck: reports.build" in html
        assert "No alerts." in site.get("/history?page=2")[1]

    def test_the_stylesheet_is_served(self, site: Site) -> None:
        """The stylesheet comes from the app's static files."""
        response = site.client.get("/chaperone/static/style.css")
        assert response.status_code == 200
        assert ".badge" in response.text


class TestIncidentPage:
    def test_a_responder_sees_the_buttons(self, site: Site) -> None:
        """A responder gets Acknowledge (with a note) and Silence, each a POST form with
        the CSRF token."""
        site.visitor.role = "responder"
        status, html = site.get(f"/incidents/job_stuck/{site.job_id}")
        assert status == 200
        assert f'action="/chaperone/incidents/job_stuck/{site.job_id}/acknowledge"' in html
        assert 'name="note"' in html
        assert f'action="/chaperone/incidents/job_stuck/{site.job_id}/silence"' in html
        assert "Undo acknowledgement" not in html

    def test_an_acknowledged_incident_offers_undo(self, site: Site) -> None:
        """Once acknowledged, the page says by whom and offers Undo instead."""
        site.visitor.role = "responder"
        site.incidents[0] = attrs.evolve(
            site.incidents[0], acknowledged_by="grace", acknowledged_at=START, ack_note="on it"
        )
        html = site.get(f"/incidents/job_stuck/{site.job_id}")[1]
        assert "by grace" in html
        assert "on it" in html
        assert "/unacknowledge" in html
        assert ">Acknowledge</button>" not in html

    def test_an_acknowledgement_in_the_history(self, site: Site) -> None:
        """An acknowledgement recorded in the history shows who, and its note."""
        record = {
            "type": "job_stuck",
            "key": site.job_id,
            "channel": "",
            "route": "",
            "status": "acknowledged",
            "alert_status": "acknowledged",
            "title": "Job Stuck: reports.build",
            "occurred_at": START.isoformat(),
            "recorded_at": START.isoformat(),
            "by": "grace",
            "note": "looking",
        }
        site.context.opened.append("history", json.dumps(record), 100)
        html = site.get(f"/incidents/job_stuck/{site.job_id}")[1]
        assert "acknowledged by <strong>grace</strong>: “looking”" in html

    def test_a_viewer_sees_no_buttons(self, site: Site) -> None:
        """A viewer sees the incident but no action form."""
        html = site.get(f"/incidents/job_stuck/{site.job_id}")[1]
        assert "Job Stuck: reports.build" in html
        assert "/acknowledge" not in html
        assert "/silence" not in html

    def test_an_unknown_incident_is_a_404(self, site: Site) -> None:
        """An incident that is not open gets a 404 page."""
        status, html = site.get("/incidents/job_stuck/some/key")
        assert status == 404
        assert "There is no open incident job_stuck some/key." in html


class TestForms:
    @pytest.mark.parametrize(
        "path", ["/", "/maintenance", "/incidents/job_stuck/{id}", "/schedules", "/jobs/{id}"]
    )
    def test_every_post_form_carries_the_csrf_token(self, site: Site, path: str) -> None:
        """Each POST form on a responder's page holds the hidden csrf_token field."""
        site.visitor.role = "responder"
        with_schedules(site)
        html = site.get(path.format(id=site.job_id))[1]
        forms = re.findall(r'<form method="post".*?</form>', html, flags=re.DOTALL)
        assert forms
        for form in forms:
            assert f'name="csrf_token" value="{helpers.web_pages.CSRF}"' in form

    def test_maintenance_start_and_end_for_a_responder(self, site: Site) -> None:
        """A responder gets the start form (duration, reason, type, key) and an End button."""
        site.visitor.role = "responder"
        html = site.get("/maintenance")[1]
        for field in ("duration", "reason", "match_type", "match_key"):
            assert f'name="{field}"' in html
        assert re.search(r'action="/chaperone/maintenance/mw-[0-9a-f]{8}/end"', html)
        site.visitor.role = "viewer"
        viewer_html = site.get("/maintenance")[1]
        assert "/end" not in viewer_html
        assert 'name="duration"' not in viewer_html


NIGHTLY = Schedule(
    job="backup.nightly",
    cron="0 3 * * *",
    timezone=ZoneInfo("Europe/Berlin"),
    grace=timedelta(minutes=10),
)


def with_schedules(site: Site, *, paused: bool = False) -> None:
    """Give the site two schedules: the running job's, hourly (up), and a nightly backup
    that never ran (paused on request).
    """
    hourly = Schedule.from_text("reports.build", "every 1h")
    site.context.settings = attrs.evolve(site.context.settings, schedules=(NIGHTLY, hourly))
    if paused:
        pause(site.context.opened, NIGHTLY.job, START)


class TestSchedulePages:
    def test_the_schedule_list(self, site: Site) -> None:
        """Each schedule with its job (the job list filtered by its name), the schedule
        and zone, grace, state in words, last run (its job page) and next run; the page
        refreshes itself."""
        with_schedules(site)
        status, html = site.get("/schedules")
        assert status == 200
        assert "<h1>Schedules" in html
        assert 'href="/chaperone/jobs?name=reports.build"' in html
        assert 'href="/chaperone/jobs?name=backup.nightly"' in html
        assert "<code>0 3 * * *</code>" in html
        assert "Europe/Berlin" in html
        assert "10 minutes" in html
        assert "<code>every 1 hour</code>" in html
        assert html.count(">up</span>") == 2
        assert f'href="/chaperone/jobs/{site.job_id}"' in html
        assert "2024-01-16T02:00:00Z" in html  # 03:00 in Berlin
        assert "all (2)" in html
        assert 'data-refresh="15"' in html

    def test_trouble_first_and_filtered(self, site: Site) -> None:
        """A paused schedule comes before one up; ``?state=`` keeps one state, and says
        when none is in it; a page past the end says so."""
        with_schedules(site, paused=True)
        html = site.get("/schedules")[1]
        assert html.index("jobs?name=backup.nightly") < html.index("jobs?name=reports.build")
        assert "paused (1)" in html
        paused = site.get("/schedules?state=paused")[1]
        assert "jobs?name=backup.nightly" in paused
        assert "jobs?name=reports.build" not in paused
        assert 'aria-current="page">paused (1)' in paused
        assert "No schedule is missed." in site.get("/schedules?state=missed")[1]
        assert "No schedule on this page." in site.get("/schedules?page=2")[1]
        assert "jobs?name=reports.build" in site.get("/schedules?state=nonsense")[1]

    def test_pages_link_on(self, site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
        """Past a page's size, Next leads on (keeping the filter) and Previous back."""
        monkeypatch.setattr("chaperone.web.pages._schedules.PAGE_SIZE", 1)
        with_schedules(site)
        first = site.get("/schedules?state=up")[1]
        assert 'href="/chaperone/schedules?state=up&amp;page=2" rel="next"' in first
        second = site.get("/schedules?state=up&page=2")[1]
        assert 'href="/chaperone/schedules?state=up" rel="prev"' in second
        assert "jobs?name=reports.build" in second
        assert "jobs?name=backup.nightly" not in second

    def test_no_schedules(self, site: Site) -> None:
        """Without a schedule the page says how to declare one."""
        html = site.get("/schedules")[1]
        assert "No schedules." in html
        assert "chaperone run --schedule" in html

    def test_buttons_for_a_responder_only(self, site: Site) -> None:
        """A responder gets Pause for a running schedule and Resume for a paused one, each
        posting to the schedule's address; a viewer gets neither."""
        with_schedules(site, paused=True)
        site.visitor.role = "responder"
        html = site.get("/schedules")[1]
        assert 'action="/chaperone/schedules/backup.nightly/resume"' in html
        assert 'action="/chaperone/schedules/reports.build/pause"' in html
        assert ">Resume</button>" in html
        assert ">Pause</button>" in html
        site.visitor.role = "viewer"
        viewer = site.get("/schedules")[1]
        assert "/pause" not in viewer
        assert "/resume" not in viewer

    def test_the_overview_lists_those_not_up(self, site: Site) -> None:
        """The overview lists the paused schedule (not the one up) with the number of all."""
        with_schedules(site, paused=True)
        html = site.get("/")[1]
        assert "Schedules not up" in html
        assert "of 2." in html
        assert "jobs?name=backup.nightly" in html
        assert "jobs?name=reports.build" not in html
        assert "/pause" not in html  # the buttons are on the schedule list

    def test_the_overview_when_all_are_up(self, site: Site) -> None:
        """Every schedule up: one line saying so."""
        with_schedules(site)
        html = site.get("/")[1]
        assert "All 2 schedules are on time." in html
        assert "Schedules not up <small>(0)</small>" in html
        assert "jobs?name=" not in html

    def test_the_overview_without_schedules(self, site: Site) -> None:
        """No schedule: the overview says nothing of schedules."""
        main = site.get("/")[1].split("<main>")[1]
        assert "Open incidents" in main
        assert "chedule" not in main

    def test_the_job_page_shows_its_schedule(self, site: Site) -> None:
        """A job whose name has a schedule shows it and its state; one without, nothing."""
        assert "<h2>Schedule" not in site.get(f"/jobs/{site.job_id}")[1]
        with_schedules(site)
        site.visitor.role = "responder"
        html = site.get(f"/jobs/{site.job_id}")[1]
        assert '<h2>Schedule <span class="badge badge-up">up</span></h2>' in html
        assert "<code>every 1 hour</code>" in html
        assert 'action="/chaperone/schedules/reports.build/pause"' in html


class TestAccess:
    @pytest.mark.parametrize("path", [*PAGES, "/jobs/x"])
    def test_no_login_no_page(self, site: Site, path: str) -> None:
        """Without a login, the login check's answer stands (here a 401)."""
        site.visitor.name = None
        status, html = site.get(path)
        assert status == 401
        assert "reports.build" not in html

    @pytest.mark.parametrize("path", PAGES)
    def test_no_secret_in_any_page(self, site: Site, path: str) -> None:
        """The serve token in the settings never reaches a page."""
        site.visitor.role = "responder"
        assert SECRET not in site.get(path)[1]

    def test_a_store_that_cannot_be_read_is_a_503_page(self, site: Site) -> None:
        """A store that fails gives a 503 page saying why, secrets masked."""
        site.context.broken = StoreError("cannot open sqlite:///var/db (disk I/O error)")
        status, html = site.get("/jobs")
        assert status == 503
        assert "The store cannot be read" in html
        assert "disk I/O error" in html

    def test_the_root_redirects_to_the_prefix(self, site: Site) -> None:
        """The tiny app's / redirects to the overview under the prefix."""
        response = site.client.get("/")
        assert response.headers["location"] == "/chaperone/"
