"""What the end-to-end browser tests do on the web app's pages: sign in as a person does,
keep a screenshot at desktop and phone size, and measure a page's horizontal overflow.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast

import attrs

from chaperone import JobStuck, ManualClock
from chaperone._chaperone import Chaperone
from chaperone._dispatch import AlertReport
from chaperone.config import Settings, load_settings
from chaperone.store import Store
from chaperone.supervision._records import JobRecord
from chaperone.supervision._supervisor import store_record
from chaperone.testing.cli import clean_environ
from chaperone.testing.servers import RecordedRequest, RecordingServer, Reply
from chaperone.web import WebContext, create_app
from chaperone.web._passwords import hash_password
from helpers.browser import screenshot_path
from helpers.web import serving_app

if TYPE_CHECKING:
    from playwright.sync_api import Page, ViewportSize

__all__ = [
    "DESKTOP",
    "ESCALATION",
    "PASSWORD",
    "PHONE",
    "ROUTING_KEY",
    "USER",
    "Site",
    "overflow",
    "pagerduty_events",
    "running_site",
    "screenshots_at_both_sizes",
    "sign_in",
    "users_config",
]

USER: Final = "ann"
PASSWORD: Final = "correct horse battery"  # noqa: S105 - a test password
ROUTING_KEY: Final = "e2eRoutingKey0123456789abcdefXYZ"
"""A PagerDuty routing key of the 32 characters the channel requires."""
ESCALATION: Final = ("0s", "5m", "15m")
"""job_stuck's escalation delays in the sites :func:`running_site` serves."""
DESKTOP: Final[ViewportSize] = {"width": 1280, "height": 800}
PHONE: Final[ViewportSize] = {"width": 390, "height": 844}


def users_config(password_hash: str) -> str:
    """A chaperone.toml giving the responder :data:`USER` the password of ``password_hash``."""
    return (
        f'[[serve.users]]\nname = "{USER}"\npassword_hash = "{password_hash}"\nrole = "responder"\n'
    )


def sign_in(page: Page, password: str = PASSWORD, name: str = USER) -> None:
    """Fill in the login form the page shows and send it."""
    page.get_by_label("Name").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def overflow(page: Page) -> int:
    """How many CSS pixels the page body is wider than the viewport (0: none)."""
    width: int = page.evaluate(
        "() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
        " - document.documentElement.clientWidth"
    )
    return width


def screenshots_at_both_sizes(page: Page, label: str) -> tuple[Path, Path]:
    """Full-page screenshots of what ``page`` shows at desktop then phone size (the page
    reloaded at each size), kept as ``page--<label>-desktop.png`` and ``-phone.png``; the
    desktop size again after.
    """
    paths = []
    for size_name, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        page.reload()
        path = screenshot_path("page", f"{label}-{size_name}")
        path.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(path), full_page=True)
        paths.append(path)
    page.set_viewport_size(DESKTOP)
    return paths[0], paths[1]


def _accepted(request: RecordedRequest, _base_url: str) -> str:
    return '{"status": "success", "message": "Event processed"}'


@attrs.frozen
class Site:
    """The whole web app (as ``chaperone serve`` builds it) on a manual clock, served by
    uvicorn from a thread, on a SQLite store file, with a loopback PagerDuty.
    """

    context: WebContext
    clock: ManualClock
    url: str
    pagerduty: RecordingServer

    @property
    def base(self) -> str:
        """The pages' root URL."""
        return f"{self.url}{self.context.prefix}"

    @property
    def store(self) -> Store:
        """The app's store."""
        return self.context.store()

    @property
    def chaperone(self) -> Chaperone:
        """The app's own Chaperone (same store, settings and clock)."""
        return self.context.chaperone()

    def write_job(
        self,
        name: str,
        *,
        started_ago: timedelta,
        heartbeat_ago: timedelta | None = None,
        **fields: Any,
    ) -> str:
        """Write a job record of ``name`` (running unless ``fields`` say otherwise, on
        worker-3, a minute's heartbeat interval) started ``started_ago``, last heartbeat
        ``heartbeat_ago``; its supervision id.
        """
        now = self.clock.timestamp()
        supervision_id = str(uuid.uuid4())
        values: dict[str, Any] = {
            "heartbeat_interval": 60,
            "missed_heartbeats": 3,
            "pid": 48213,
            "host": "worker-3",
            **fields,
        }
        record = JobRecord(
            supervision_id=supervision_id,
            name=name,
            started_at=now - started_ago.total_seconds(),
            last_heartbeat=None if heartbeat_ago is None else now - heartbeat_ago.total_seconds(),
            **values,
        )
        store_record(self.store, record)
        return supervision_id

    def stuck_job(self, name: str, **fields: Any) -> str:
        """Write a running job of ``name`` silent for 12 minutes (stuck once detected);
        its supervision id.
        """
        return self.write_job(
            name,
            started_ago=timedelta(minutes=22),
            heartbeat_ago=timedelta(minutes=12),
            **fields,
        )

    def detect(self) -> list[AlertReport]:
        """One monitor's detection now (the built-in detectors, on the store), each event
        found dispatched; what became of their alerts.
        """
        events = self.chaperone.hooks.detect(self.clock.now()).events
        return [alert for event in events for alert in self.chaperone.dispatch(event).alerts]

    def report_stuck(self, supervision_id: str, name: str) -> AlertReport:
        """Dispatch a job_stuck event of the job now (as a repeat of the detector's
        report would be); what became of its alert.
        """
        report = self.chaperone.dispatch(
            JobStuck(
                supervision_id=supervision_id,
                job_class=name,
                stuck_duration=timedelta(minutes=12),
                occurred_at=self.clock.now(),
            )
        )
        [alert] = report.alerts
        return alert


def pagerduty_events(server: RecordingServer) -> list[dict[str, Any]]:
    """The JSON bodies the loopback PagerDuty received, oldest first."""
    return [cast(dict[str, Any], request.json()) for request in server.requests]


@contextmanager
def running_site(folder: Path, clock: ManualClock, **variables: str) -> Iterator[Site]:
    """The whole app (:func:`~chaperone.web.create_app`) served on 127.0.0.1 with ``clock``: users
    from ``folder/chaperone.toml`` (the responder :data:`USER`), job_stuck escalating on
    :data:`ESCALATION`, channels pagerduty (loopback) and database, the store a SQLite
    file in ``folder``; ``variables`` on top of that environment.
    """
    delays = ", ".join(f'"{delay}"' for delay in ESCALATION)
    (folder / "chaperone.toml").write_text(
        f"{users_config(hash_password(PASSWORD))}\n[alerting.escalation]\njob_stuck = [{delays}]\n",
        encoding="utf-8",
    )
    with RecordingServer(default=Reply(status=202, body=_accepted)) as pagerduty:
        environ = clean_environ(
            folder,
            CHAPERONE_ALERT_CHANNELS="pagerduty,database",
            CHAPERONE_PAGERDUTY_ROUTING_KEY=ROUTING_KEY,
            CHAPERONE_PAGERDUTY_EVENTS_URL=pagerduty.url_for("/v2/enqueue"),
            **variables,
        )
        settings: Settings = load_settings(environ, folder)
        context = WebContext.build(settings, clock)
        try:
            with serving_app(create_app(context), settings) as server:
                yield Site(context=context, clock=clock, url=server.url, pagerduty=pagerduty)
        finally:
            context.close()
