"""For the page tests: incidents shaped like ``chaperone.incidents.Incident``, a context
like ``chaperone.web.WebContext``, and a tiny app serving the page routes under a
prefix with the login and the incidents replaced by stand-ins.

The tests replace the routes' calls into the login and the incidents (``require``,
``csrf_token``, ``open_incidents``, ``find_incident``), so each page is judged on the
data it is given.
"""

from __future__ import annotations

import asyncio
import importlib
import types
from collections.abc import Callable, Sequence
from datetime import datetime

import attrs
import httpx
import pytest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Mount, Route

from chaperone._clock import ManualClock
from chaperone.config import Settings
from chaperone.metrics._health import HealthReport, check_health
from chaperone.store import Store
from chaperone.web._auth import Role, User

PREFIX = "/chaperone"
CSRF = "csrf-token-for-tests"


@attrs.frozen(kw_only=True)
class StandInIncident:
    """An open incident with the fields the contract gives ``Incident``."""

    type: str
    key: str
    title: str
    summary: str = ""
    severity: str = "critical"
    priority: str = "high"
    opened_at: datetime
    last_alert_at: datetime
    alerts: int = 1
    supervision_id: str | None = None
    fields: dict[str, str] = attrs.field(factory=dict)
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    ack_note: str = ""
    delivered_to: tuple[str, ...] = ()

    @property
    def state(self) -> str:
        """firing, or acknowledged once someone did."""
        return "firing" if self.acknowledged_by is None else "acknowledged"


def page_routes() -> types.ModuleType:
    """The module of the page routes, imported."""
    return importlib.import_module("chaperone.web.pages._routes")


@attrs.define
class StandInContext:
    """What the pages read of ``WebContext``: settings, clock, store, health, prefix."""

    settings: Settings
    clock: ManualClock
    opened: Store
    prefix: str = PREFIX
    broken: Exception | None = None
    """Raised by :meth:`store` when set (a store that cannot be opened)."""

    def store(self) -> Store:
        """The store (or the failure set in ``broken``)."""
        if self.broken is not None:
            raise self.broken
        return self.opened

    def health(self) -> HealthReport:
        """Today's health report on the store."""
        return check_health(self.opened, self.settings, self.clock.timestamp())


@attrs.define
class Visitor:
    """Who the stand-in login lets in (None: nobody; the login page redirects)."""

    name: str | None = "ada"
    role: str = "viewer"


def page_app(
    context: StandInContext,
    monkeypatch: pytest.MonkeyPatch,
    visitor: Visitor,
    incidents: Callable[[], Sequence[StandInIncident]],
) -> Starlette:
    """The page routes under :data:`PREFIX`, logged in as ``visitor`` and seeing
    ``incidents()`` as the open incidents.
    """
    routes = page_routes()

    def require(request: Request, role: Role) -> User:
        assert role == Role.VIEWER
        if visitor.name is None:
            raise HTTPException(401, "log in")
        return User(name=visitor.name, role=Role(visitor.role))

    def find(_store: Store, alert_type: str, key: str) -> StandInIncident | None:
        for incident in incidents():
            if (incident.type, incident.key) == (alert_type, key):
                return incident
        return None

    monkeypatch.setattr(routes, "require", require)
    monkeypatch.setattr(routes, "csrf_token", lambda _request: CSRF)
    monkeypatch.setattr(routes, "open_incidents", lambda _store: list(incidents()))
    monkeypatch.setattr(routes, "find_incident", find)
    app = Starlette(
        routes=[
            Route("/", lambda _request: RedirectResponse(f"{PREFIX}/")),
            Mount(PREFIX, routes=routes.PAGE_ROUTES),
        ]
    )
    app.state.context = context
    return app


class PageClient:
    """Sends one request at a time to an ASGI app in this process (each in an event loop
    of its own), through httpx's ASGI transport.
    """

    def __init__(self, app: Starlette) -> None:
        self.app = app

    def get(self, path: str) -> httpx.Response:
        """GET ``path``, redirects not followed."""

        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://testserver"
            ) as client:
                return await client.get(path)

        return asyncio.run(send())
