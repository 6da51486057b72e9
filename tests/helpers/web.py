"""The web app served by a real uvicorn on 127.0.0.1 (a free port) from a thread, for
in-process tests; and contexts on a store the test already holds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import pytest
from starlette.routing import BaseRoute
from starlette.types import ASGIApp

from chaperone._clock import Clock
from chaperone.config import Settings
from chaperone.metrics import HealthReport
from chaperone.metrics._judge import HealthJudge
from chaperone.store import Store
from chaperone.web import WebContext, create_app
from chaperone.web._server import WebServer, bind

__all__ = ["ReadingJudge", "context_on", "running", "serving_app"]

START_TIMEOUT = 10.0


class ReadingJudge(HealthJudge):
    """A judge whose report is what ``read`` returns (or raises)."""

    def __init__(self, settings: Settings, clock: Clock, read: Callable[[], HealthReport]) -> None:
        super().__init__(settings, clock)
        self.read = read

    def report(self) -> HealthReport:
        """What ``read`` says."""
        return self.read()


def context_on(
    store: Store, clock: Clock, settings: Settings | None = None, *, prefix: str = "/chaperone"
) -> WebContext:
    """A context on ``store`` (the caller closes it), judging health with a 2 s timeout."""
    settings = settings or Settings()
    judge = HealthJudge(settings, clock, store=store, store_timeout=2.0)
    return WebContext(settings=settings, clock=clock, judge=judge, prefix=prefix)


@contextmanager
def running(context: WebContext, routes: Sequence[BaseRoute] | None = None) -> Iterator[WebServer]:
    """The app of ``context`` (with ``routes``, by default the whole site) under uvicorn,
    with the context's serve settings, served from a thread; stopped after.
    """
    with serving_app(create_app(context, routes=routes), context.settings) as server:
        yield server


@contextmanager
def serving_app(app: ASGIApp, settings: Settings) -> Iterator[WebServer]:
    """``app`` under uvicorn on 127.0.0.1 (a free port) with ``settings.serve``, served
    from a thread; stopped after.
    """
    server = WebServer(app, bind("127.0.0.1", 0), settings.serve)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)  # waiting for a real server to start
    if not server.started:
        pytest.fail("the web server did not start")
    try:
        yield server
    finally:
        server.stop()
        thread.join(timeout=15)
