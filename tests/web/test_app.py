"""The app's shape under a real uvicorn on 127.0.0.1: the prefix and the redirect to
it, health at both places, the open overview on loopback without authentication, a
graceful stop that lets a request finish, and the context's lazy store and Chaperone.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
import httpx
import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from chaperone import ManualClock
from chaperone._exceptions import StoreError
from chaperone.config import ServeSettings, Settings
from chaperone.store import MemoryStore
from chaperone.web import WebContext
from helpers.web import context_on, running


@pytest.fixture
def store() -> Iterator[MemoryStore]:
    """A memory store on a manual clock."""
    opened = MemoryStore(ManualClock())
    yield opened
    opened.close()


class TestPrefix:
    """Pages sit under the prefix; health and metrics at the root and under it."""

    @pytest.mark.parametrize("prefix", ["/chaperone", "/ops/chaperone"])
    def test_root_redirects_and_health_is_in_both_places(
        self, store: MemoryStore, prefix: str
    ) -> None:
        """``/`` is a 307 to the prefix; /health and /metrics answer at the root and
        under the prefix; the overview names the loopback user.
        """
        context = context_on(store, ManualClock(), prefix=prefix)
        with running(context) as server, httpx.Client(base_url=server.url) as client:
            root = client.get("/")
            statuses = [client.get(path).status_code for path in ("/health", f"{prefix}/health")]
            metrics = client.get(f"{prefix}/metrics")
            landing = client.get(f"{prefix}/", headers={"Accept": "text/html"})
        assert (root.status_code, root.headers["location"]) == (307, f"{prefix}/")
        assert statuses == [503, 503]  # no monitor ticks in this store
        assert metrics.text.startswith("# HELP")
        assert landing.status_code == 200
        assert 'class="user">local <small>(responder)</small>' in landing.text

    def test_empty_prefix_serves_pages_at_the_root(self, store: MemoryStore) -> None:
        """With prefix "": the overview at ``/``, the login at ``/login``."""
        context = context_on(store, ManualClock(), prefix="")
        with running(context) as server, httpx.Client(base_url=server.url) as client:
            landing = client.get("/", headers={"Accept": "text/html"})
            login = client.get("/login")
        assert 'class="user">local' in landing.text
        assert 'action="/login"' in login.text

    def test_local_user_only_for_a_loopback_host_name(self, store: MemoryStore) -> None:
        """Without authentication, ``Host: localhost`` or ``[::1]`` is the local user; a
        page asked for under another name (a rebound DNS name) gets nobody: 401.
        """
        context = context_on(store, ManualClock())
        with running(context) as server, httpx.Client(base_url=server.url) as client:
            statuses = [
                client.get("/chaperone/", headers={"Host": host}).status_code
                for host in ("localhost:9464", "[::1]:9464", "evil.example:9464")
            ]
        assert statuses == [200, 200, 401]

    def test_unknown_page_is_404(self, store: MemoryStore) -> None:
        """Without authentication configured, an unknown path is a plain 404."""
        context = context_on(store, ManualClock())
        with running(context) as server, httpx.Client(base_url=server.url) as client:
            assert client.get("/chaperone/nothing").status_code == 404


class TestConcurrency:
    """Connections past ``serve.max_connections`` are turned away with 503."""

    def test_limit_answers_503_and_frees_up(self, store: MemoryStore) -> None:
        """With a limit of 4 and 4 connections held, /health is 503; once they are
        closed, 200 again.
        """
        settings = attrs.evolve(
            Settings(),
            health=attrs.evolve(Settings().health, require_monitor=False),
            serve=ServeSettings(max_connections=4),
        )
        context = context_on(store, ManualClock(), settings)
        with running(context) as server:
            url = httpx.URL(server.url)
            assert url.port is not None
            held = [socket.create_connection((url.host, url.port)) for _ in range(4)]
            try:
                busy = poll(f"{server.url}/health", lambda status: status == 503)
            finally:
                for sock in held:
                    sock.close()
            free = poll(f"{server.url}/health", lambda status: status == 200)
        assert busy == 503
        assert free == 200


def poll(url: str, done: Callable[[int], bool], timeout: float = 10.0) -> int:
    """GET ``url`` (a new connection each time) until ``done`` says yes to the status or
    ``timeout`` seconds passed; the last status.
    """
    deadline = time.monotonic() + timeout
    status = httpx.get(url, timeout=10).status_code
    while not done(status) and time.monotonic() < deadline:
        time.sleep(0.05)  # waiting for the real server to see the connections come and go
        status = httpx.get(url, timeout=10).status_code
    return status


class TestGracefulStop:
    """Stopping lets the request in progress finish."""

    def test_request_in_progress_finishes(self, store: MemoryStore) -> None:
        """A request whose route is still working when the stop comes gets its 200."""
        entered = threading.Event()

        async def slow(request: Request) -> Response:
            entered.set()
            await asyncio.sleep(0.3)  # still at work when the stop comes
            return PlainTextResponse("finished")

        answers: list[httpx.Response] = []
        context = context_on(store, ManualClock())
        with running(context, routes=[Route("/slow", slow)]) as server:
            asking = threading.Thread(
                target=lambda: answers.append(httpx.get(f"{server.url}/chaperone/slow", timeout=10))
            )
            asking.start()
            assert entered.wait(10)
            server.stop()
            asking.join(10)
        [answer] = answers
        assert (answer.status_code, answer.text) == (200, "finished")


class TestContext:
    """The context opens the store and builds a Chaperone lazily."""

    def test_chaperone_is_built_once_on_the_store(self, store: MemoryStore) -> None:
        """Two calls, one Chaperone, on the context's store."""
        context = context_on(store, ManualClock())
        first = context.chaperone()
        try:
            assert context.chaperone() is first
            assert context.store() is store
        finally:
            first.close()

    def test_store_that_cannot_open_is_a_store_error(self, tmp_path: Path) -> None:
        """A store that cannot be opened (a folder where the file should be): StoreError,
        and the health report is unhealthy.
        """
        settings = Settings(store_url=f"sqlite:///{tmp_path}")
        context = WebContext.build(settings, ManualClock())
        try:
            with pytest.raises(StoreError):
                context.store()
            assert context.health().healthy is False
        finally:
            context.close()
