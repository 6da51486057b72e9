"""The incident actions and the maintenance forms through the whole app as ``chaperone
serve`` runs it (``create_app`` with its default routes), under a real uvicorn on
127.0.0.1, on a SQLite file holding a real open incident: acknowledge, undo and silence
from the incident's page (a session from the login form, its CSRF token) and through the
JSON API (the bearer token); who may, what is refused and how; and what the incident and
the history show after.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import attrs
import httpx
import pytest

from chaperone import Chaperone, JobStuck, ManualClock
from chaperone.builtin.database_channel import read_history
from chaperone.config import GroupingSettings, Role, ServeSettings, Settings, UserEntry
from chaperone.incidents import Incident, find_incident
from chaperone.maintenance import active_windows, load_windows
from chaperone.schedules import Schedule, is_paused
from chaperone.store import SQLiteStore
from chaperone.web import WebContext, create_app
from chaperone.web._csrf import MAX_BODY
from chaperone.web._passwords import hash_password
from chaperone.web._server import WebServer, bind

TOKEN = "action-token-5e1f0c7a9b"  # noqa: S105 - a test token
ANN_PASSWORD = "ann-pw-0b6c2d94"  # noqa: S105 - a test password
BOB_PASSWORD = "bob-pw-77e1a3f0"  # noqa: S105 - a test password
PREFIX = "/chaperone"
SID = "2f1c9a7e-4b3d-4e5f-9a8b-7c6d5e4f3a2b"
KIND = "job_stuck"
HTML = {"Accept": "text/html"}
START_TIMEOUT = 10.0
NIGHTLY = "backup.nightly"
ODD_JOB = 'reports/eu "daily" <b>&amp; 100%?'
"""A job name with a slash, quotes, markup, a percent sign and a question mark."""


def site_settings() -> Settings:
    """A token, a responder (ann) and a viewer (bob), the history kept, no grouping, and
    two schedules (:data:`NIGHTLY`, :data:`ODD_JOB`).
    """
    settings = Settings(
        channels=("log", "database"),
        grouping=GroupingSettings(enabled=False),
        schedules=(
            Schedule(job=NIGHTLY, cron="0 3 * * *"),
            Schedule.from_text(ODD_JOB, "every 1h"),
        ),
    )
    serve = ServeSettings(
        users=(
            UserEntry("ann", hash_password(ANN_PASSWORD), Role.RESPONDER),
            UserEntry("bob", hash_password(BOB_PASSWORD), Role.VIEWER),
        ),
        session_secret="action-session-secret-3c9d",  # noqa: S106 - a test secret
    )
    return attrs.evolve(
        settings,
        health=attrs.evolve(settings.health, token=TOKEN, require_monitor=False),
        serve=serve,
    )


@attrs.frozen
class Site:
    """The running app, its store and clock, and a Chaperone on the same store."""

    url: str
    store: SQLiteStore
    clock: ManualClock
    chaperone: Chaperone

    @property
    def base(self) -> str:
        """The prefix's URL."""
        return f"{self.url}{PREFIX}"

    def incident(self, key: str = SID) -> Incident | None:
        """The open incident of type job_stuck and ``key``, as the store has it now."""
        return find_incident(self.store, KIND, key)

    def history(self, *statuses: str) -> list[dict[str, Any]]:
        """The history's records with one of ``statuses``, newest first."""
        return [r for r in read_history(self.store, 100) if r.get("status") in statuses]

    def incident_path(self, action: str, key: str = SID) -> str:
        """The form address of ``action`` on an incident."""
        return f"{self.base}/incidents/{KIND}/{key}/{action}"

    def api_path(self, action: str, key: str = SID) -> str:
        """The API address of ``action`` on an incident."""
        return f"{self.base}/api/incidents/{KIND}/{key}/{action}"

    def schedule_path(self, job: str, action: str, *, api: bool = False) -> str:
        """The form (or API) address of ``action`` on the schedule of ``job``."""
        return f"{self.base}{'/api' if api else ''}/schedules/{quote(job, safe='')}/{action}"


@contextmanager
def serving_site(folder: Path, settings: Settings) -> Iterator[Site]:
    """The whole app on ``settings`` and a SQLite file in ``folder`` holding one open
    job_stuck incident (delivered to ``log`` and ``database``), served by uvicorn from a
    thread.
    """
    clock = ManualClock()
    path = folder / "chaperone.sqlite3"
    store = SQLiteStore(path, clock, f"sqlite:///{path}")
    context = WebContext.build(settings, clock, store=store, prefix=PREFIX)
    runtime = context.chaperone()
    report = runtime.dispatch(
        JobStuck(
            supervision_id=SID, job_class="backup.nightly", stuck_duration=timedelta(minutes=9)
        )
    )
    assert report.alerts[0].delivered
    server = WebServer(create_app(context), bind("127.0.0.1", 0), settings.serve)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)  # waiting for a real server to start
    try:
        assert server.started, "the web server did not start"
        yield Site(server.url, store, clock, runtime)
    finally:
        server.stop()
        thread.join(timeout=15)
        context.close()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """The whole app with a token and two users (:func:`site_settings`)."""
    with serving_site(tmp_path, site_settings()) as served:
        yield served


def csrf_of(page: str) -> str:
    """The CSRF token in a page's first form."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


def signed_in(site: Site, name: str, password: str) -> tuple[httpx.Client, str]:
    """A client signed in through the login form, and its session's CSRF token (read
    from the incident's page).
    """
    client = httpx.Client()
    form = client.get(f"{site.base}/login", headers=HTML)
    answer = client.post(
        f"{site.base}/login",
        data={"name": name, "password": password, "csrf_token": csrf_of(form.text)},
    )
    assert answer.status_code == 303, answer.text
    page = client.get(f"{site.base}/incidents/{KIND}/{SID}", headers=HTML)
    assert page.status_code == 200, page.text
    return client, csrf_of(page.text)


@pytest.fixture
def ann(site: Site) -> Iterator[tuple[httpx.Client, str]]:
    """ann (a responder), signed in, with her CSRF token."""
    client, token = signed_in(site, "ann", ANN_PASSWORD)
    try:
        yield client, token
    finally:
        client.close()


@pytest.fixture
def bob(site: Site) -> Iterator[tuple[httpx.Client, str]]:
    """bob (a viewer), signed in, with his CSRF token."""
    client, token = signed_in(site, "bob", BOB_PASSWORD)
    try:
        yield client, token
    finally:
        client.close()


def bearer() -> httpx.Client:
    """A script's client: the serve token as a bearer token."""
    return httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"})


class TestIncidentForms:
    """A responder acts from the incident's page; each form answers with a redirect back."""

    def test_acknowledge_then_undo(self, site: Site, ann: tuple[httpx.Client, str]) -> None:
        """Acknowledge with a note: 303 to the incident's page, which shows ann; the
        incident and the history say so; the undo makes it firing again, recorded too.
        """
        client, csrf = ann
        acked = client.post(
            site.incident_path("acknowledge"), data={"csrf_token": csrf, "note": "on it"}
        )
        assert acked.status_code == 303, acked.text
        assert acked.headers["location"] == f"{PREFIX}/incidents/{KIND}/{SID}"
        incident = site.incident()
        assert incident is not None
        assert (incident.state, incident.acknowledged_by, incident.ack_note) == (
            "acknowledged",
            "ann",
            "on it",
        )
        assert incident.acknowledged_at == site.clock.now()
        page = client.get(f"{site.base}/incidents/{KIND}/{SID}", headers=HTML).text
        assert "ann" in page
        assert "on it" in page
        [record] = site.history("acknowledged")
        assert (record["key"], record["by"], record["note"]) == (SID, "ann", "on it")

        undone = client.post(site.incident_path("unacknowledge"), data={"csrf_token": csrf})
        assert undone.status_code == 303, undone.text
        incident = site.incident()
        assert incident is not None
        assert (incident.state, incident.acknowledged_by) == ("firing", None)
        [record] = site.history("unacknowledged")
        assert (record["key"], record["by"]) == (SID, "ann")

    def test_silence_opens_a_window_for_the_incident(
        self, site: Site, ann: tuple[httpx.Client, str]
    ) -> None:
        """Silence for 2h: a window from now to two hours on, matching exactly this
        incident's type and key, with the reason.
        """
        client, csrf = ann
        answer = client.post(
            site.incident_path("silence"),
            data={"csrf_token": csrf, "duration": "2h", "reason": "restoring the disk"},
        )
        assert answer.status_code == 303, answer.text
        [window] = active_windows(site.chaperone.settings, site.store, site.clock.now())
        assert window.ends_at - window.started_at == timedelta(hours=2)
        assert window.match.to_dict() == {"type": [KIND], "key": [SID]}
        assert "restoring the disk" in window.reason

    @pytest.mark.parametrize("duration", ["soon", "0s", "8d", ""])
    def test_a_bad_duration_is_400_naming_the_field(
        self, site: Site, ann: tuple[httpx.Client, str], duration: str
    ) -> None:
        """A duration that is not one, zero, or over a week: 400 naming ``duration``; no
        window opens.
        """
        client, csrf = ann
        answer = client.post(
            site.incident_path("silence"), data={"csrf_token": csrf, "duration": duration}
        )
        assert answer.status_code == 400
        assert "duration" in answer.text
        assert load_windows(site.store) == []

    def test_a_viewer_is_refused(self, site: Site, bob: tuple[httpx.Client, str]) -> None:
        """bob, a viewer with a valid CSRF token: 403 for each action; nothing changes."""
        client, csrf = bob
        for action in ("acknowledge", "unacknowledge", "silence"):
            answer = client.post(
                site.incident_path(action), data={"csrf_token": csrf, "duration": "1h"}
            )
            assert answer.status_code == 403, action
        incident = site.incident()
        assert incident is not None
        assert incident.state == "firing"
        assert load_windows(site.store) == []
        assert site.history("acknowledged", "unacknowledged") == []

    @pytest.mark.parametrize("token", [None, "", "not-the-token"])
    def test_without_the_csrf_token_it_is_refused(
        self, site: Site, ann: tuple[httpx.Client, str], token: str | None
    ) -> None:
        """A responder's form without its CSRF token, or with a wrong one: 403."""
        client, _ = ann
        data = {"note": "forged"} if token is None else {"note": "forged", "csrf_token": token}
        answer = client.post(site.incident_path("acknowledge"), data=data)
        assert answer.status_code == 403
        assert "CSRF" in answer.text
        incident = site.incident()
        assert incident is not None
        assert incident.state == "firing"

    def test_an_unknown_incident_is_404(self, site: Site, ann: tuple[httpx.Client, str]) -> None:
        """An incident that is not open: 404 saying so, for each action."""
        client, csrf = ann
        for action in ("acknowledge", "unacknowledge", "silence"):
            answer = client.post(
                site.incident_path(action, "no-such-job"),
                data={"csrf_token": csrf, "duration": "1h"},
            )
            assert answer.status_code == 404, action
            assert "no open job_stuck incident for no-such-job" in answer.text
        assert load_windows(site.store) == []


class TestForgedForms:
    """Another site's form can put anything in the address, but never the CSRF token."""

    def test_a_ping_key_in_the_address_is_no_csrf_token(
        self, site: Site, ann: tuple[httpx.Client, str]
    ) -> None:
        """ann's session posting the acknowledge form with ``?key=`` and no CSRF token:
        403, the incident still firing.
        """
        client, _ = ann
        answer = client.post(f"{site.incident_path('acknowledge')}?key=anything", data={})
        assert answer.status_code == 403
        incident = site.incident()
        assert incident is not None
        assert incident.state == "firing"

    def test_nothing_configured_on_loopback(self, tmp_path: Path) -> None:
        """No authentication (everyone on loopback is a responder): a form another site
        makes the browser post, with or without ``?key=``, starts no window and
        acknowledges nothing.
        """
        settings = Settings(channels=("log", "database"), grouping=GroupingSettings(enabled=False))
        settings = attrs.evolve(
            settings, health=attrs.evolve(settings.health, require_monitor=False)
        )
        with serving_site(tmp_path, settings) as local, httpx.Client() as browser:
            forged = {"Origin": "https://attacker.example"}
            for query in ("", "?key=x"):
                window = browser.post(
                    f"{local.base}/maintenance{query}",
                    data={"duration": "7d", "reason": "forged"},
                    headers=forged,
                )
                acked = browser.post(
                    f"{local.incident_path('acknowledge')}{query}", data={}, headers=forged
                )
                assert (window.status_code, acked.status_code) == (403, 403), query
            assert load_windows(local.store) == []
            incident = local.incident()
            assert incident is not None
            assert incident.state == "firing"


class TestMaintenanceForms:
    """The maintenance page starts a window from now and ends one early."""

    def test_start_and_end(self, site: Site, ann: tuple[httpx.Client, str]) -> None:
        """Start 30m for job_stuck alerts: 303 to the maintenance page, which lists it;
        End: 303 back, and the window is no longer on.
        """
        client, csrf = ann
        started = client.post(
            f"{site.base}/maintenance",
            data={
                "csrf_token": csrf,
                "duration": "30m",
                "reason": "disk swap",
                "match_type": KIND,
                "match_key": "",
            },
        )
        assert started.status_code == 303, started.text
        assert started.headers["location"] == f"{PREFIX}/maintenance"
        [window] = active_windows(site.chaperone.settings, site.store, site.clock.now())
        assert window.ends_at - window.started_at == timedelta(minutes=30)
        assert window.match.to_dict() == {"type": [KIND]}
        assert window.reason == "disk swap"
        page = client.get(f"{site.base}/maintenance", headers=HTML).text
        assert window.id in page

        site.clock.advance(timedelta(minutes=5))
        ended = client.post(f"{site.base}/maintenance/{window.id}/end", data={"csrf_token": csrf})
        assert ended.status_code == 303, ended.text
        assert active_windows(site.chaperone.settings, site.store, site.clock.now()) == []
        [stored] = load_windows(site.store)
        assert stored.ended_at == site.clock.now()

    def test_bad_fields_and_unknown_windows(
        self, site: Site, ann: tuple[httpx.Client, str]
    ) -> None:
        """A bad duration: 400 naming it; ending a window that does not exist: 404."""
        client, csrf = ann
        bad = client.post(f"{site.base}/maintenance", data={"csrf_token": csrf, "duration": "x"})
        assert bad.status_code == 400
        assert "duration" in bad.text
        unknown = client.post(f"{site.base}/maintenance/nope/end", data={"csrf_token": csrf})
        assert unknown.status_code == 404
        assert load_windows(site.store) == []

    def test_a_viewer_cannot_start_one(self, site: Site, bob: tuple[httpx.Client, str]) -> None:
        """bob, a viewer: 403, no window."""
        client, csrf = bob
        answer = client.post(
            f"{site.base}/maintenance", data={"csrf_token": csrf, "duration": "1h"}
        )
        assert answer.status_code == 403
        assert load_windows(site.store) == []


class TestApi:
    """Scripts act with the bearer token and JSON, and get JSON back."""

    def test_acknowledge_list_and_undo(self, site: Site) -> None:
        """Acknowledge with a note (the user is ``token``), list it acknowledged, undo it;
        the history has both.
        """
        with bearer() as client:
            acked = client.post(site.api_path("acknowledge"), json={"note": "paged in"})
            listed = client.get(f"{site.base}/api/incidents")
            undone = client.post(site.api_path("unacknowledge"))
            after = client.get(f"{site.base}/api/incidents")
        assert acked.status_code == 200, acked.text
        assert acked.headers["cache-control"] == "no-store"
        body = acked.json()
        assert body["ok"] is True
        assert body["acknowledge"]["state"] == "acknowledged"
        assert body["acknowledge"]["acknowledged_by"] == "token"
        assert body["acknowledge"]["ack_note"] == "paged in"
        [listed_incident] = listed.json()
        assert (listed_incident["key"], listed_incident["state"]) == (SID, "acknowledged")
        assert listed_incident["delivered_to"] == ["database", "log"]
        assert undone.json()["unacknowledge"]["state"] == "firing"
        assert [i["state"] for i in after.json()] == ["firing"]
        assert [r["by"] for r in site.history("acknowledged", "unacknowledged")] == [
            "token",
            "token",
        ]

    def test_silence(self, site: Site) -> None:
        """Silence for 45m: the answer names the window and its end, which the store has."""
        with bearer() as client:
            answer = client.post(site.api_path("silence"), json={"duration": "45m"})
        assert answer.status_code == 200, answer.text
        silenced = answer.json()["silence"]
        [window] = active_windows(site.chaperone.settings, site.store, site.clock.now())
        assert silenced["window"] == window.id
        assert silenced["ends_at"] == (site.clock.now() + timedelta(minutes=45)).isoformat()
        assert silenced["lasts"] == "45 minutes"

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            (b'{"duration": "forever"}', "duration"),
            (b"{}", "duration"),
            (b"not json", "body"),
            (b'["a list"]', "body"),
        ],
    )
    def test_bad_bodies_are_400_naming_the_field(self, site: Site, body: bytes, field: str) -> None:
        """A bad duration, none, or a body that is not a JSON object: 400 with an error
        that starts with the field's name; no window opens.
        """
        with bearer() as client:
            answer = client.post(
                site.api_path("silence"), content=body, headers={"Content-Type": "application/json"}
            )
        assert answer.status_code == 400
        assert answer.json()["ok"] is False
        assert answer.json()["error"].startswith(f"{field}: ")
        assert load_windows(site.store) == []

    def test_a_body_over_the_limit_is_413(self, site: Site) -> None:
        """A body one byte over the limit a form has too: 413 naming the body; nothing
        changes. One at the limit is read (and is no JSON object: 400).
        """
        with bearer() as client:
            over = client.post(site.api_path("acknowledge"), content=b" " * (MAX_BODY + 1))
            at = client.post(site.api_path("acknowledge"), content=b"x" * MAX_BODY)
        assert over.status_code == 413
        assert over.json()["error"].startswith("body: ")
        assert at.status_code == 400
        incident = site.incident()
        assert incident is not None
        assert incident.state == "firing"

    def test_an_unknown_incident_is_404(self, site: Site) -> None:
        """An incident that is not open: 404 with a JSON error."""
        with bearer() as client:
            answer = client.post(site.api_path("acknowledge", "no-such-job"))
        assert answer.status_code == 404
        assert answer.json() == {"ok": False, "error": "no open job_stuck incident for no-such-job"}

    @pytest.mark.parametrize("header", [None, f"Bearer {TOKEN}-wrong", "Basic abc"])
    def test_missing_or_wrong_credentials_are_401(self, site: Site, header: str | None) -> None:
        """Wrong credentials: 401 for actions and the list; none at all: 401 for the
        list, and 403 for an action (refused before, for want of a CSRF token); the token
        never shows; nothing changes.
        """
        headers = {} if header is None else {"Authorization": header}
        with httpx.Client(headers=headers) as client:
            acted = client.post(site.api_path("acknowledge"), json={})
            listed = client.get(f"{site.base}/api/incidents")
        assert (acted.status_code, listed.status_code) == (403 if header is None else 401, 401)
        assert TOKEN not in acted.text + listed.text
        incident = site.incident()
        assert incident is not None
        assert incident.state == "firing"

    def test_a_viewer_may_list_but_not_act(self, site: Site, bob: tuple[httpx.Client, str]) -> None:
        """bob's session lists the incidents; his API action (CSRF header given) is 403."""
        client, csrf = bob
        listed = client.get(f"{site.base}/api/incidents")
        acted = client.post(site.api_path("acknowledge"), json={}, headers={"X-CSRF-Token": csrf})
        assert listed.status_code == 200
        assert [i["key"] for i in listed.json()] == [SID]
        assert acted.status_code == 403


class TestScheduleForms:
    """A responder pauses and resumes a schedule from the pages; each form answers with a
    redirect to the schedule list.
    """

    @pytest.mark.parametrize("job", [NIGHTLY, ODD_JOB])
    def test_pause_then_resume(self, site: Site, ann: tuple[httpx.Client, str], job: str) -> None:
        """Pause: 303 to the schedule list, which offers Resume; the schedule says paused.
        Resume: 303 again, and it no longer does.
        """
        client, csrf = ann
        paused = client.post(site.schedule_path(job, "pause"), data={"csrf_token": csrf})
        assert paused.status_code == 303, paused.text
        assert paused.headers["location"] == f"{PREFIX}/schedules"
        assert is_paused(site.store, job)
        page = client.get(f"{site.base}/schedules?state=paused", headers=HTML).text
        assert f'action="{PREFIX}/schedules/{quote(job, safe="")}/resume"' in page
        resumed = client.post(site.schedule_path(job, "resume"), data={"csrf_token": csrf})
        assert resumed.status_code == 303, resumed.text
        assert not is_paused(site.store, job)

    def test_a_viewer_is_refused(self, site: Site, bob: tuple[httpx.Client, str]) -> None:
        """bob, a viewer with a valid CSRF token: 403 for both; the schedule not paused."""
        client, csrf = bob
        for action in ("pause", "resume"):
            answer = client.post(site.schedule_path(NIGHTLY, action), data={"csrf_token": csrf})
            assert answer.status_code == 403, action
        assert not is_paused(site.store, NIGHTLY)

    @pytest.mark.parametrize("token", [None, "not-the-token"])
    def test_without_the_csrf_token_it_is_refused(
        self, site: Site, ann: tuple[httpx.Client, str], token: str | None
    ) -> None:
        """A responder's form without its CSRF token, or with a wrong one: 403."""
        client, _ = ann
        data = {} if token is None else {"csrf_token": token}
        answer = client.post(site.schedule_path(NIGHTLY, "pause"), data=data)
        assert answer.status_code == 403
        assert "CSRF" in answer.text
        assert not is_paused(site.store, NIGHTLY)

    def test_a_job_without_a_schedule_is_404(
        self, site: Site, ann: tuple[httpx.Client, str]
    ) -> None:
        """A job with no schedule: 404 saying so; nothing is paused."""
        client, csrf = ann
        answer = client.post(site.schedule_path("no.such.job", "pause"), data={"csrf_token": csrf})
        assert answer.status_code == 404
        assert "no schedule for job 'no.such.job'" in answer.text
        assert not is_paused(site.store, "no.such.job")


class TestScheduleApi:
    """Scripts pause and resume with the bearer token, and get the schedule back as JSON."""

    @pytest.mark.parametrize("job", [NIGHTLY, ODD_JOB])
    def test_pause_and_resume(self, site: Site, job: str) -> None:
        """Pause answers the schedule paused, as ``chaperone schedules --json`` shows it;
        resume answers it up again.
        """
        with bearer() as client:
            paused = client.post(site.schedule_path(job, "pause", api=True))
            assert is_paused(site.store, job)
            resumed = client.post(site.schedule_path(job, "resume", api=True))
        assert paused.status_code == 200, paused.text
        assert paused.headers["cache-control"] == "no-store"
        body = paused.json()
        assert body["ok"] is True
        assert (body["pause"]["job"], body["pause"]["state"]) == (job, "paused")
        assert resumed.json()["resume"]["state"] == "up"
        assert not is_paused(site.store, job)

    def test_twice_is_once(self, site: Site) -> None:
        """Pausing a paused schedule, or resuming one not paused, answers the same."""
        with bearer() as client:
            answers = [
                client.post(site.schedule_path(NIGHTLY, action, api=True))
                for action in ("pause", "pause", "resume", "resume")
            ]
        assert [answer.status_code for answer in answers] == [200] * 4
        states = [
            answer.json()[action]["state"]
            for answer, action in zip(answers, ("pause", "pause", "resume", "resume"), strict=True)
        ]
        assert states == ["paused", "paused", "up", "up"]

    def test_a_job_without_a_schedule_is_404(self, site: Site) -> None:
        """A job with no schedule: 404 with a JSON error."""
        with bearer() as client:
            answer = client.post(site.schedule_path("no/such job", "pause", api=True))
        assert answer.status_code == 404
        assert answer.json() == {"ok": False, "error": "no schedule for job 'no/such job'"}

    @pytest.mark.parametrize("header", [None, f"Bearer {TOKEN}-wrong"])
    def test_missing_or_wrong_credentials(self, site: Site, header: str | None) -> None:
        """A wrong token: 401; none: 403 (no CSRF token); the token never shows; nothing
        is paused.
        """
        headers = {} if header is None else {"Authorization": header}
        with httpx.Client(headers=headers) as client:
            answer = client.post(site.schedule_path(NIGHTLY, "pause", api=True))
        assert answer.status_code == (403 if header is None else 401)
        assert TOKEN not in answer.text
        assert not is_paused(site.store, NIGHTLY)

    def test_a_viewer_may_not(self, site: Site, bob: tuple[httpx.Client, str]) -> None:
        """bob's session, CSRF header given: 403; nothing is paused."""
        client, csrf = bob
        answer = client.post(
            site.schedule_path(NIGHTLY, "pause", api=True), headers={"X-CSRF-Token": csrf}
        )
        assert answer.status_code == 403
        assert not is_paused(site.store, NIGHTLY)
