"""Every page in a real browser, on realistic data: readable on a phone (no horizontal
overflow of the page body, the nav usable, no error in the console), and kept as
screenshots at desktop and phone size under ``test-artifacts/screenshots/``.

With ``CHAPERONE_TEST_DOCS_IMAGES=write`` the overview, the job page and the schedules
are also written to ``docs/images/`` (the images docs/web.md shows).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

import attrs
import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, expect

from chaperone import CircuitBreakerClosed, CircuitBreakerOpened, ManualClock
from chaperone._matching import parse_match
from chaperone.incidents import acknowledge
from chaperone.maintenance import start_window
from chaperone.schedules import Schedule, all_schedules, declare, pause, read_schedules
from helpers.browser import ARTIFACTS
from helpers.web_browser import (
    PHONE,
    Site,
    overflow,
    running_site,
    screenshots_at_both_sizes,
    sign_in,
)

DOCS_IMAGES_VARIABLE: Final = "CHAPERONE_TEST_DOCS_IMAGES"
"""Set to ``write`` to write the docs' screenshots of the web app."""
DOCS_IMAGES: Final = Path(__file__).resolve().parents[2] / "docs" / "images"
DOCS_WIDTH: Final = 1280
"""The docs' screenshots: the top of the page, at the width the pages are laid out for."""
MAX_DOCS_IMAGE: Final = 200 * 1024
STUCK_JOB: Final = "imports.partner_feed"
NAV: Final = {
    "Overview": "Overview",
    "Jobs": "Jobs",
    "Incidents": "Open incidents",
    "History": "History",
    "Schedules": "Schedules",
    "Maintenance": "Maintenance",
}
"""The nav's links, and the heading of the page each opens."""


SCHEDULES: Final = (
    Schedule(
        job="reports.nightly",
        cron="30 2 * * *",
        timezone=ZoneInfo("Europe/Berlin"),
        grace=timedelta(minutes=20),
    ),
    Schedule.from_text("billing.export", "every 1h", grace=timedelta(minutes=10)),
    Schedule.from_text("emails.digest", "every 30m"),
    Schedule.from_text("imports.hourly_sync", "every 15m"),
    Schedule.from_text("search.reindex", "every 35m", grace=timedelta(minutes=10)),
    Schedule.from_text("cache.warm", "every 10m"),
)
"""Forty minutes after they are first seen: reports.nightly and emails.digest up,
billing.export failed (its run), imports.hourly_sync missed twice, search.reindex late,
cache.warm paused."""


@attrs.frozen
class Scene:
    """The app with a realistic store: a stuck job (acknowledged), a timed-out one, a
    running, a completed and a failed one, a resolved incident, a maintenance window, and
    schedules in every state.
    """

    site: Site
    stuck: str
    """The stuck job's supervision id."""


def _realistic(site: Site) -> str:
    """Fill the site's store as a night's work would; the stuck job's id."""
    clock, chaperone = site.clock, site.chaperone
    for schedule in SCHEDULES:
        declare(site.store, schedule, "chaperone run on worker-3", clock.now())
    read_schedules(all_schedules(chaperone.settings, site.store), site.store, clock.now())
    opened = clock.now()
    chaperone.dispatch(
        CircuitBreakerOpened(service="payment-gateway", failure_count=10, opened_at=opened)
    )
    clock.advance(timedelta(minutes=8))
    chaperone.dispatch(CircuitBreakerClosed(service="payment-gateway", closed_at=clock.now()))
    clock.advance(timedelta(minutes=22))
    stuck = site.write_job(
        STUCK_JOB,
        started_ago=timedelta(minutes=31),
        heartbeat_ago=timedelta(minutes=14),
        progress_current=3120,
        progress_total=5000,
        timeout=4 * 3600,
        metadata={"queue": "imports", "feed": "partner-eu", "batch": "2026-12-07"},
    )
    site.write_job(
        "billing.invoices",
        started_ago=timedelta(minutes=52),
        heartbeat_ago=timedelta(seconds=20),
        timeout=45 * 60,
        progress_current=870,
        progress_total=1000,
    )
    found = {alert.alert.type for alert in site.detect()}
    assert found == {"job_stuck", "job_timeout"}, found
    clock.advance(timedelta(minutes=4))
    acknowledge(
        chaperone, "job_stuck", stuck, by="ann", note="The partner's API is slow again; watching"
    )
    clock.advance(timedelta(minutes=6))
    now = clock.timestamp()
    site.write_job(
        "reports.rebuild",
        started_ago=timedelta(minutes=3),
        heartbeat_ago=timedelta(seconds=15),
        progress_current=42,
        progress_total=120,
    )
    site.write_job(
        "emails.digest",
        started_ago=timedelta(minutes=25),
        heartbeat_ago=timedelta(minutes=19),
        state="completed",
        finished_at=now - 18 * 60,
    )
    site.write_job(
        "billing.export",
        started_ago=timedelta(minutes=40),
        heartbeat_ago=timedelta(minutes=33),
        state="failed",
        finished_at=now - 32 * 60,
        error="ConnectionError: the warehouse refused the connection",
    )
    start_window(
        site.store,
        clock.now(),
        timedelta(hours=2),
        parse_match(["type=threshold_*"]),
        "Warehouse migration",
    )
    pause(site.store, "cache.warm", clock.now())
    return stuck


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    """The realistic site, served for the whole module."""
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=40)
    folder = tmp_path_factory.mktemp("pages")
    # No monitor runs here: its absence would make the health section all about it.
    with running_site(folder, ManualClock(start), CHAPERONE_HEALTH_REQUIRE_MONITOR="false") as site:
        yield Scene(site, _realistic(site))


@pytest.fixture(scope="module")
def signed_in(browser: Browser, scene: Scene) -> Iterator[BrowserContext]:
    """A browser context (phone-sized) signed in as the responder."""
    context = browser.new_context(viewport=PHONE)
    try:
        page = context.new_page()
        page.goto(f"{scene.site.base}/login")
        sign_in(page)
        expect(page.get_by_role("heading", name="Overview")).to_be_visible()
        page.close()
        yield context
    finally:
        context.close()


@pytest.fixture
def phone(signed_in: BrowserContext) -> Iterator[Page]:
    """A page of the signed-in context."""
    page = signed_in.new_page()
    try:
        yield page
    finally:
        page.close()


PAGES: Final = {
    "overview": ("/", 200, "Overview"),
    "jobs": ("/jobs", 200, "Jobs"),
    "job": ("/jobs/{stuck}", 200, STUCK_JOB),
    "incidents": ("/incidents", 200, "Open incidents"),
    "incident": ("/incidents/job_stuck/{stuck}", 200, f"Job Stuck: {STUCK_JOB}"),
    "history": ("/history", 200, "History"),
    "maintenance": ("/maintenance", 200, "Maintenance"),
    "schedules": ("/schedules", 200, "Schedules"),
    "404": ("/jobs/no-such-job", 404, None),
}
"""Each page: its path (under the prefix), its status, and what its heading says."""


def _check_phone_layout(page: Page) -> None:
    """No horizontal overflow of the body; the nav's links all within the viewport."""
    assert overflow(page) <= 0, f"{page.url} is wider than the phone by {overflow(page)} px"
    nav = page.get_by_role("navigation", name="Pages")
    for name in NAV:
        link = nav.get_by_role("link", name=name, exact=True)
        expect(link).to_be_visible()
        box = link.bounding_box()
        assert box is not None
        assert box["x"] >= 0, (name, box)
        assert box["x"] + box["width"] <= PHONE["width"], (name, box)


class TestEveryPage:
    """Each page, signed in, on a phone and on a desktop."""

    @pytest.mark.parametrize("name", list(PAGES))
    def test_readable_on_a_phone(self, scene: Scene, phone: Page, name: str) -> None:
        """At 390 by 844 pixels the page has no horizontal overflow (tables scroll in their own
        box) and its nav fits; nothing fails in the console; screenshots kept at both sizes.
        """
        path, status, heading = PAGES[name]
        errors: list[str] = []
        phone.on("pageerror", lambda error: errors.append(str(error)))

        def console(message: ConsoleMessage) -> None:
            if message.type == "error" and not (status == 404 and "404" in message.text):
                errors.append(f"{message.text} {message.location}")

        phone.on("console", console)
        answer = phone.goto(scene.site.base + path.format(stuck=scene.stuck))
        assert answer is not None
        assert answer.status == status
        if heading is not None:
            expect(phone.get_by_role("heading", level=1)).to_contain_text(heading)
        else:
            expect(phone.locator("main")).to_contain_text("no-such-job")
        _check_phone_layout(phone)
        desktop, small = screenshots_at_both_sizes(phone, name)
        assert errors == []
        assert desktop.stat().st_size > 0
        assert small.stat().st_size > 0
        assert desktop.parent == ARTIFACTS / "screenshots"

    def test_the_nav_leads_to_each_page_on_a_phone(self, scene: Scene, phone: Page) -> None:
        """On a phone, each link of the nav opens its page."""
        phone.goto(f"{scene.site.base}/")
        for name, heading in NAV.items():
            phone.get_by_role("navigation", name="Pages").get_by_role(
                "link", name=name, exact=True
            ).click()
            expect(phone.get_by_role("heading", level=1)).to_contain_text(heading)

    def test_the_login_page_on_a_phone(self, scene: Scene, page: Page) -> None:
        """The login page, signed out, fits a phone too; screenshots kept at both sizes."""
        page.set_viewport_size(PHONE)
        page.goto(f"{scene.site.base}/login")
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        assert overflow(page) <= 0
        desktop, small = screenshots_at_both_sizes(page, "login")
        assert desktop.stat().st_size > 0
        assert small.stat().st_size > 0


@pytest.mark.skipif(
    os.environ.get(DOCS_IMAGES_VARIABLE) != "write",
    reason=f"writes docs/images only when {DOCS_IMAGES_VARIABLE}=write",
)
class TestDocsImages:
    """The docs' screenshots, from the realistic scene."""

    @pytest.mark.parametrize(
        ("image", "path", "height"),
        [
            ("web-overview.png", "/", 1000),
            ("web-job.png", "/jobs/{stuck}", 1500),
            ("web-schedules.png", "/schedules", 830),
        ],
    )
    def test_write_docs_image(
        self, scene: Scene, phone: Page, image: str, path: str, height: int
    ) -> None:
        """The top ``height`` pixels of the page at the docs' width, written under
        docs/images, smaller than 200 KB.
        """
        phone.set_viewport_size({"width": DOCS_WIDTH, "height": height})
        phone.goto(scene.site.base + path.format(stuck=scene.stuck))
        expect(phone.get_by_role("heading", level=1)).not_to_have_text(re.compile("^$"))
        target = DOCS_IMAGES / image
        target.parent.mkdir(parents=True, exist_ok=True)
        phone.screenshot(path=str(target))
        assert target.stat().st_size < MAX_DOCS_IMAGE, target.stat().st_size
