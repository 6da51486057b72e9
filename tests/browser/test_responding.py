"""Responding from the pages, in a real browser, on the whole app served by uvicorn with
a manual clock: acknowledging an incident (passed on to a loopback PagerDuty, the next
escalation repeat held back), undoing it, silencing an incident, and starting and ending
a maintenance window.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from chaperone import ManualClock
from chaperone.builtin.database_channel import read_history
from helpers.web_browser import Site, pagerduty_events, running_site, sign_in

JOB = "reports.rebuild"
NOTE = "on it: restarting the importer"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """The app on a manual clock, with a stuck job."""
    with running_site(tmp_path, ManualClock(datetime.now(UTC))) as running:
        yield running


def _section(page: Page, heading: str | re.Pattern[str]) -> Locator:
    """The page's section under ``heading``."""
    return page.locator("section").filter(has=page.get_by_role("heading", name=heading))


class TestAcknowledge:
    """Acknowledging an incident from its page, and undoing it."""

    def test_acknowledge_stops_the_repeat_and_reaches_pagerduty(
        self, site: Site, page: Page
    ) -> None:
        """The trigger reaches PagerDuty; the acknowledgement made on the incident's page
        reaches it as ``acknowledge`` with the same dedup_key; the repeat due past the
        next escalation delay is held back (the history says so, PagerDuty gets nothing);
        who and the note show on the incident and job pages; Undo shows too.
        """
        supervision_id = site.stuck_job(JOB)
        assert [(a.alert.type, a.delivered) for a in site.detect()] == [("job_stuck", True)]
        [trigger] = pagerduty_events(site.pagerduty)
        assert trigger["event_action"] == "trigger"
        assert trigger["dedup_key"] == f"job_stuck:{supervision_id}"

        incident_url = f"{site.base}/incidents/job_stuck/{supervision_id}"
        page.goto(incident_url)
        sign_in(page)
        expect(page).to_have_url(incident_url)
        expect(page.get_by_role("heading", level=1).locator(".badge")).to_have_text("firing")
        page.get_by_label("Note").fill(NOTE)
        page.get_by_role("button", name="Acknowledge").click()

        expect(page).to_have_url(incident_url)
        expect(page.get_by_role("heading", level=1).locator(".badge")).to_have_text("acknowledged")
        facts = page.locator("dl.facts")
        expect(facts).to_contain_text("by ann")
        expect(facts).to_contain_text(NOTE)
        site.pagerduty.wait_for_requests(2)  # passed on within the action, or just after
        events = pagerduty_events(site.pagerduty)
        assert [event["event_action"] for event in events] == ["trigger", "acknowledge"]
        assert events[1]["dedup_key"] == trigger["dedup_key"]

        site.clock.advance(timedelta(minutes=6))  # past the next delay, 5m
        repeat = site.report_stuck(supervision_id, JOB)
        assert not repeat.delivered
        assert (repeat.verdict.reason or "").startswith("acknowledged by ann at ")
        assert len(site.pagerduty.requests) == 2
        fired = [
            (row["channel"], row["status"])
            for row in read_history(site.store, 100)
            if row["type"] == "job_stuck" and row["alert_status"] == "firing"
        ]
        assert sorted(fired) == [("database", "delivered"), ("pagerduty", "delivered")]

        page.goto(f"{site.base}/jobs/{supervision_id}")
        expect(page.get_by_role("heading", level=1).locator(".badge")).to_have_text("stuck")
        timeline = page.locator("ol.timeline")
        expect(timeline).to_contain_text("acknowledged by ann")
        expect(timeline).to_contain_text(NOTE)
        alerts = _section(page, "Alerts and deliveries")
        expect(alerts.locator(".badge-acknowledged").first).to_be_visible()
        expect(alerts).to_contain_text(NOTE)

        page.goto(incident_url)
        page.get_by_role("button", name="Undo acknowledgement").click()
        expect(page.get_by_role("heading", level=1).locator(".badge")).to_have_text("firing")
        expect(page.get_by_role("button", name="Acknowledge")).to_be_visible()
        undone = _section(page, "History").locator(".badge-unacknowledged")
        expect(undone).to_have_count(1)
        expect(_section(page, "History")).to_contain_text("unacknowledged by ann")
        assert site.report_stuck(supervision_id, JOB).delivered  # the repeat, due since 5m
        assert [event["event_action"] for event in pagerduty_events(site.pagerduty)] == [
            "trigger",
            "acknowledge",
            "trigger",
        ]


class TestSilence:
    """Silencing an incident from its page."""

    def test_silence_opens_a_window_scoped_to_the_incident(self, site: Site, page: Page) -> None:
        """Silence for 2h with a reason: the maintenance page lists a window on now that
        matches this incident's type and key, with the reason.
        """
        supervision_id = site.stuck_job(JOB)
        assert [(a.alert.type, a.delivered) for a in site.detect()] == [("job_stuck", True)]
        page.goto(f"{site.base}/incidents/job_stuck/{supervision_id}")
        sign_in(page)
        page.get_by_label("Silence for").fill("2h")
        page.get_by_label("Reason").fill("known: the feed is down")
        page.get_by_role("button", name="Silence").click()

        page.goto(f"{site.base}/maintenance")
        on_now = _section(page, re.compile("On now"))
        [row] = on_now.locator("tbody tr").all()
        expect(row).to_contain_text("known: the feed is down")
        expect(row).to_contain_text("job_stuck")
        expect(row).to_contain_text(supervision_id)
        site.clock.advance(timedelta(minutes=10))
        assert not site.report_stuck(supervision_id, JOB).delivered


class TestMaintenance:
    """Starting and ending a maintenance window from the maintenance page."""

    def test_start_then_end_a_window_and_its_summary_is_delivered(
        self, site: Site, page: Page
    ) -> None:
        """A window started from the form is listed as on now; an alert it matches is
        held back; its End button ends it (listed as ended early) and its summary is
        delivered (the history page shows it).
        """
        supervision_id = site.stuck_job(JOB)
        page.goto(f"{site.base}/maintenance")
        sign_in(page)
        expect(_section(page, re.compile("On now"))).to_contain_text("No maintenance window")
        page.get_by_label("Duration").fill("2h")
        page.get_by_label("Reason").fill("database upgrade")
        page.get_by_label("Alert type").fill("job_*")
        page.get_by_role("button", name="Start").click()

        on_now = _section(page, re.compile("On now"))
        row = on_now.locator("tbody tr").filter(has_text="database upgrade")
        expect(row).to_have_count(1)
        expect(row).to_contain_text("job_*")
        assert not site.report_stuck(supervision_id, JOB).delivered
        site.clock.advance(timedelta(minutes=20))
        page.reload()
        expect(row.locator("td").nth(4)).to_have_text("1")

        row.get_by_role("button", name="End").click()
        expect(_section(page, re.compile("On now"))).to_contain_text("No maintenance window")
        ended = _section(page, "Recently ended").locator("tbody tr")
        expect(ended.filter(has_text="database upgrade")).to_contain_text("ended early")

        page.get_by_role("navigation", name="Pages").get_by_role("link", name="History").click()
        summary = page.locator("article.alert").filter(has_text="Maintenance window ended")
        expect(summary).to_have_count(1)
        expect(summary.get_by_role("heading")).to_contain_text("1 alert suppressed")
        pagerduty_row = summary.locator("table.deliveries tbody tr").filter(has_text="pagerduty")
        expect(pagerduty_row.locator(".badge")).to_have_text("delivered")
        [event] = pagerduty_events(site.pagerduty)  # the summary; the stuck job's alert held
        assert event["payload"]["summary"].startswith("Maintenance window ended")
