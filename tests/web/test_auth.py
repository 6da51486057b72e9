"""Who may see and do what, through the web app under a real uvicorn on 127.0.0.1: the
serve token, users with passwords and sessions, a trusted proxy's header, CSRF, roles,
ping keys, and cookies with the right flags.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from datetime import timedelta

import attrs
import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from structlog.testing import capture_logs

from chaperone import ManualClock
from chaperone.config import Role, ServeSettings, Settings, UserEntry
from chaperone.store import MemoryStore
from chaperone.web._auth import check_ping_key, require
from chaperone.web._passwords import hash_password
from chaperone.web._server import WebServer
from chaperone.web._sessions import COOKIE, SESSION_LIFETIME
from helpers.web import context_on, running

TOKEN = "tok-a81f3c9e5d2b7046"  # noqa: S105 - a test token
ANN_PASSWORD = "ann-pw-7d1e0c95"  # noqa: S105 - a test password
BOB_PASSWORD = "bob-pw-3b8a6f21"  # noqa: S105 - a test password
PING_KEY = "ping-global-5c2e9d"
JOB_KEY = "ping-nightly-41f7a0"
SESSION_SECRET = "session-secret-9e4b2c71"  # noqa: S105 - a test secret
PREFIX = "/chaperone"
HTML = {"Accept": "text/html"}


async def act(request: Request) -> Response:
    """An action: responders only."""
    user = require(request, Role.RESPONDER)
    return PlainTextResponse(f"done by {user.name}")


async def look(request: Request) -> Response:
    """A page: viewers and responders."""
    user = require(request, Role.VIEWER)
    return JSONResponse({"name": user.name, "role": str(user.role)})


async def ping(request: Request) -> Response:
    """A check-in: a ping key (or the token), else 401."""
    job = request.path_params["job"]
    if not check_ping_key(request, job):
        return PlainTextResponse("a ping key is required\n", 401)
    return PlainTextResponse(f"ok {job}\n")


async def broken(request: Request) -> Response:
    """A route with a bug in it."""
    raise RuntimeError(f"a bug, near {TOKEN}")


ROUTES = [
    Route("/act", act, methods=["POST"]),
    Route("/look", look, methods=["GET"]),
    Route("/ping/{job}", ping, methods=["POST"]),
    Route("/broken", broken, methods=["GET"]),
]


@attrs.frozen
class App:
    """A running app and its clock."""

    server: WebServer
    clock: ManualClock

    @property
    def base(self) -> str:
        """The prefix's URL."""
        return f"{self.server.url}{PREFIX}"


def serve_settings(**changes: object) -> Settings:
    """Settings with two users, a token, ping keys, a session secret and ``changes``."""
    serve = ServeSettings(
        users=(
            UserEntry("ann", hash_password(ANN_PASSWORD), Role.RESPONDER),
            UserEntry("bob", hash_password(BOB_PASSWORD), Role.VIEWER),
        ),
        session_secret=SESSION_SECRET,
        ping_key=PING_KEY,
        ping_keys={"nightly.report": JOB_KEY},
        trusted_header="X-Forwarded-User",
    )
    settings = Settings()
    return attrs.evolve(
        settings,
        health=attrs.evolve(settings.health, token=TOKEN, require_monitor=False),
        serve=attrs.evolve(serve, **changes),
    )


@pytest.fixture
def app() -> Iterator[App]:
    """The app with every kind of credential configured."""
    clock = ManualClock()
    store = MemoryStore(clock)
    try:
        with running(context_on(store, clock, serve_settings()), routes=ROUTES) as server:
            yield App(server, clock)
    finally:
        store.close()


def csrf_of(page: str) -> str:
    """The CSRF token in a page's form."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


def log_in(client: httpx.Client, app: App, name: str, password: str) -> httpx.Response:
    """Open the login form, then send it with ``name`` and ``password``."""
    form = client.get(f"{app.base}/login", headers=HTML)
    assert form.status_code == 200
    return client.post(
        f"{app.base}/login",
        data={"name": name, "password": password, "csrf_token": csrf_of(form.text)},
    )


class TestToken:
    """The serve token of today keeps working for scripts."""

    def test_token_is_a_responder(self, app: App) -> None:
        """With the bearer token: a page and an action answer, without a CSRF token."""
        with httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}) as client:
            looked = client.get(f"{app.base}/look")
            acted = client.post(f"{app.base}/act")
        assert looked.json() == {"name": "token", "role": "responder"}
        assert acted.text == "done by token"

    @pytest.mark.parametrize("header", [f"Bearer {TOKEN}x", f"Basic {TOKEN}", "Bearer", ""])
    def test_wrong_token_is_401_even_for_a_browser(self, app: App, header: str) -> None:
        """Wrong credentials get 401 with a challenge, not a redirect to the login."""
        with httpx.Client() as client:
            response = client.get(f"{app.base}/look", headers={**HTML, "Authorization": header})
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert TOKEN not in response.text


class TestNoCredentials:
    """Without credentials a browser is sent to the login page, a script refused."""

    def test_browser_is_sent_to_login(self, app: App) -> None:
        """A page asked for by a browser: 303 to the login form, remembering the page."""
        with httpx.Client() as client:
            response = client.get(f"{app.base}/look?x=1", headers=HTML)
        assert response.status_code == 303
        assert response.headers["location"] == f"{PREFIX}/login?next=%2Fchaperone%2Flook%3Fx%3D1"

    def test_script_gets_401(self, app: App) -> None:
        """A script's request for a page, health or an unknown path: 401 with a
        challenge (no path is revealed).
        """
        with httpx.Client() as client:
            for path in (f"{PREFIX}/look", "/health", f"{PREFIX}/metrics", "/nothing-here"):
                response = client.get(f"{app.server.url}{path}")
                assert response.status_code == 401, path
                assert response.headers["www-authenticate"].startswith("Bearer")


class TestLogin:
    """Users sign in with their password; a session cookie carries who they are."""

    def test_right_password_signs_in_with_a_proper_cookie(self, app: App) -> None:
        """303 to the overview; the cookie is HttpOnly, SameSite=Lax, under the
        prefix; the user's pages answer with their name and role.
        """
        with httpx.Client() as client:
            response = log_in(client, app, "ann", ANN_PASSWORD)
            cookie = [
                value
                for value in response.headers.get_list("set-cookie")
                if value.startswith(f"{COOKIE}=")
            ]
            looked = client.get(f"{app.base}/look")
            landing = client.get(f"{app.base}/", headers=HTML)
        assert response.status_code == 303
        assert response.headers["location"] == f"{PREFIX}/"
        [flags] = cookie
        assert "HttpOnly" in flags
        assert "SameSite=lax" in flags
        assert f"Path={PREFIX}" in flags
        assert "Secure" not in flags  # plain http on loopback
        assert looked.json() == {"name": "ann", "role": "responder"}
        assert "ann" in landing.text

    @pytest.mark.parametrize(
        ("name", "password"),
        [("ann", BOB_PASSWORD), ("ann", ""), ("nobody", ANN_PASSWORD), ("", "")],
    )
    def test_wrong_password_is_401(self, app: App, name: str, password: str) -> None:
        """A wrong password or an unknown user: the form again, 401, no session."""
        with httpx.Client() as client:
            response = log_in(client, app, name, password)
            after = client.get(f"{app.base}/look")
        assert response.status_code == 401
        assert "Wrong name or password" in response.text
        assert after.status_code == 401

    def test_secure_cookie_when_asked(self) -> None:
        """``serve.secure_cookies`` (TLS ended by a proxy): the cookie is Secure."""
        clock = ManualClock()
        store = MemoryStore(clock)
        context = context_on(store, clock, serve_settings(secure_cookies=True))
        try:
            with running(context) as server, httpx.Client() as client:
                form = client.get(f"{server.url}{PREFIX}/login")
        finally:
            store.close()
        assert "Secure" in form.headers["set-cookie"]

    def test_session_ends_after_its_lifetime(self, app: App) -> None:
        """On the app's clock, a session past its lifetime no longer signs anyone in."""
        with httpx.Client() as client:
            log_in(client, app, "ann", ANN_PASSWORD)
            before = client.get(f"{app.base}/look")
            app.clock.advance(SESSION_LIFETIME + timedelta(seconds=1))
            after = client.get(f"{app.base}/look")
        assert before.status_code == 200
        assert after.status_code == 401

    def test_logout_ends_the_session(self, app: App) -> None:
        """Logout (a POST with the CSRF token) clears the cookie; pages need a login."""
        with httpx.Client() as client:
            log_in(client, app, "ann", ANN_PASSWORD)
            page = client.get(f"{app.base}/", headers=HTML)
            out = client.post(f"{app.base}/logout", data={"csrf_token": csrf_of(page.text)})
            after = client.get(f"{app.base}/look")
        assert out.status_code == 303
        assert after.status_code == 401

    def test_next_never_leaves_the_app(self, app: App) -> None:
        """A ``next`` naming another site is replaced by the overview."""
        with httpx.Client() as client:
            form = client.get(f"{app.base}/login", headers=HTML)
            response = client.post(
                f"{app.base}/login",
                data={
                    "name": "ann",
                    "password": ANN_PASSWORD,
                    "csrf_token": csrf_of(form.text),
                    "next": "//evil.example/",
                },
            )
        assert response.headers["location"] == f"{PREFIX}/"


class TestRolesAndCsrf:
    """Viewers look, responders act, and every action needs the form's token."""

    def test_viewer_may_look_but_not_act(self, app: App) -> None:
        """A viewer's action: 403; their pages: 200."""
        with httpx.Client() as client:
            log_in(client, app, "bob", BOB_PASSWORD)
            page = client.get(f"{app.base}/", headers=HTML)
            looked = client.get(f"{app.base}/look")
            acted = client.post(f"{app.base}/act", data={"csrf_token": csrf_of(page.text)})
        assert looked.json() == {"name": "bob", "role": "viewer"}
        assert acted.status_code == 403

    def test_post_without_or_with_a_wrong_csrf_token_is_refused(self, app: App) -> None:
        """A responder's POST without the token, with another session's, or with a
        wrong one: 403; with it (field or header): done.
        """
        with httpx.Client() as other:
            other_token = csrf_of(other.get(f"{app.base}/login").text)
        with httpx.Client() as client:
            log_in(client, app, "ann", ANN_PASSWORD)
            token = csrf_of(client.get(f"{app.base}/", headers=HTML).text)
            missing = client.post(f"{app.base}/act")
            foreign = client.post(f"{app.base}/act", data={"csrf_token": other_token})
            wrong = client.post(f"{app.base}/act", data={"csrf_token": token + "x"})
            good = client.post(f"{app.base}/act", data={"csrf_token": token})
            header = client.post(f"{app.base}/act", headers={"X-CSRF-Token": token})
        assert [missing.status_code, foreign.status_code, wrong.status_code] == [403] * 3
        assert good.text == "done by ann"
        assert header.text == "done by ann"

    def test_login_without_the_form_is_refused(self, app: App) -> None:
        """A login POST that did not come from the form (no session): 403."""
        with httpx.Client() as client:
            response = client.post(
                f"{app.base}/login", data={"name": "ann", "password": ANN_PASSWORD}
            )
        assert response.status_code == 403


class TestTrustedProxy:
    """A reverse proxy names the user in a header, honoured only from trusted addresses."""

    def test_header_from_loopback_names_the_user(self, app: App) -> None:
        """From 127.0.0.1 (trusted by default): a configured user gets their role,
        another name the proxy role.
        """
        with httpx.Client() as client:
            ann = client.get(f"{app.base}/look", headers={"X-Forwarded-User": "ann"})
            carol = client.get(f"{app.base}/look", headers={"X-Forwarded-User": "carol"})
        assert ann.json() == {"name": "ann", "role": "responder"}
        assert carol.json() == {"name": "carol", "role": "viewer"}

    def test_header_from_an_untrusted_address_is_ignored(self) -> None:
        """With only 192.0.2.0/24 trusted, the same header from 127.0.0.1 gets 401."""
        clock = ManualClock()
        store = MemoryStore(clock)
        settings = serve_settings(trusted_proxies=(ipaddress.ip_network("192.0.2.0/24"),))
        try:
            with (
                running(context_on(store, clock, settings), routes=ROUTES) as server,
                httpx.Client() as client,
            ):
                response = client.get(
                    f"{server.url}{PREFIX}/look", headers={"X-Forwarded-User": "ann"}
                )
        finally:
            store.close()
        assert response.status_code == 401


class TestPingKeys:
    """Check-ins take the job's key, the global key or the token; nothing else."""

    @pytest.mark.parametrize(
        ("job", "how", "key", "status"),
        [
            ("nightly.report", "header", JOB_KEY, 200),
            ("nightly.report", "query", JOB_KEY, 200),
            ("nightly.report", "query", PING_KEY, 200),
            ("other", "header", PING_KEY, 200),
            ("other", "query", TOKEN, 200),
            ("other", "bearer", TOKEN, 200),
            ("other", "header", JOB_KEY, 401),
            ("nightly.report", "header", JOB_KEY[:-1], 401),
            ("nightly.report", "none", "", 401),
        ],
    )
    def test_keys(self, app: App, job: str, how: str, key: str, status: int) -> None:
        """Each key where it belongs, in a header or the query; another job's key, a
        prefix of a key, or none at all: refused. No CSRF token is needed.
        """
        headers = {
            "header": {"X-Chaperone-Ping-Key": key},
            "bearer": {"Authorization": f"Bearer {key}"},
        }.get(how, {})
        params = {"key": key} if how == "query" else {}
        with httpx.Client() as client:
            response = client.post(f"{app.base}/ping/{job}", headers=headers, params=params)
        assert response.status_code == status


class TestErrors:
    """A bug in a route is a 500 and one log line, masked, without a traceback."""

    def test_route_error_is_500_one_line(self, app: App) -> None:
        """JSON for a script, a page for a browser; the log line names the error with
        the token masked.
        """
        auth = {"Authorization": f"Bearer {TOKEN}"}
        with capture_logs() as logs, httpx.Client(headers=auth) as client:
            script = client.get(f"{app.base}/broken")
            browser = client.get(f"{app.base}/broken", headers=HTML)
        assert script.status_code == 500
        assert script.json()["error"].startswith("internal error")
        assert browser.status_code == 500
        assert "Something went wrong" in browser.text
        failures = [entry for entry in logs if entry["event"] == "request failed"]
        assert len(failures) == 2
        assert "a bug, near" in failures[0]["error"]
        assert TOKEN not in str(logs)
        assert "Traceback" not in str(logs)
