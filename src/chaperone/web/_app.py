"""The web app: ``create_app(context)`` builds the Starlette application.

Routes: ``/health`` and ``/metrics`` at the root and under the prefix; under the prefix
the login, the logout, the incident, maintenance and schedule actions, the check-ins
and the pages (or the routes a caller gives instead of those); ``/`` redirects to the
prefix.
Without credentials, a path outside the app gets 401 rather than 404 when
authentication is configured, so nothing is revealed.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from chaperone._secrets import MASKER
from chaperone.config import Settings
from chaperone.web._actions import action_routes
from chaperone.web._auth import authentication_required, current_user, unauthorized, wants_html
from chaperone.web._checkins import checkin_routes
from chaperone.web._context import WebContext
from chaperone.web._csrf import CsrfGuard
from chaperone.web._guard import RequestGuard
from chaperone.web._login import account_routes
from chaperone.web._probes import probe_routes
from chaperone.web._schedule_actions import schedule_action_routes
from chaperone.web._sessions import SessionCookie, Sessions
from chaperone.web._templates import render

__all__ = ["PING", "create_app", "site_routes"]

PING = "/ping/"
"""Where the check-ins sit under the prefix (``{prefix}/ping/{job}``...): exempt from CSRF,
as a ping key is their only credential (:func:`~chaperone.web._auth.check_ping_key`)."""


def site_routes() -> list[BaseRoute]:
    """The routes of ``chaperone serve`` under the prefix, besides the login and the
    probes: the actions and check-ins first, so a POST to a page's address finds its
    action, then the pages.
    """
    from chaperone.web.pages import PAGE_ROUTES  # imports this package's _auth

    return [*action_routes(), *schedule_action_routes(), *checkin_routes(), *PAGE_ROUTES]


def create_app(context: WebContext, *, routes: Sequence[BaseRoute] | None = None) -> Starlette:
    """The app serving ``context``: the login, the probes and ``routes`` (paths relative
    to the prefix; by default :func:`site_routes`, the whole site).
    """
    _mark_secrets(context.settings)
    prefix = context.prefix
    routes = site_routes() if routes is None else routes
    inside = [*routes, *account_routes(), *probe_routes()]
    outside: list[BaseRoute] = []
    if prefix:
        outside = [
            *probe_routes(),
            Route("/", _to_prefix, methods=None),
            Mount(prefix, routes=inside),
        ]
    else:
        outside = inside
    app = Starlette(
        routes=outside,
        middleware=[
            Middleware(RequestGuard),
            Middleware(SessionCookie),
            Middleware(CsrfGuard, exempt=_get_only(prefix), exempt_prefixes=(f"{prefix}{PING}",)),
        ],
        exception_handlers={HTTPException: _http_error},
    )
    app.state.context = context
    app.state.sessions = Sessions(
        context.settings.serve.session_secret,
        context.clock,
        path=prefix or "/",
        secure=context.settings.serve.secure_cookies,
    )
    return app


def _mark_secrets(settings: Settings) -> None:
    """Mask every secret of the app's settings everywhere, however they were made (the
    configuration loader marks them already; settings built in code may not be).
    """
    serve = settings.serve
    secrets = (
        settings.health.token,
        serve.session_secret,
        serve.ping_key,
        *serve.ping_keys.values(),
        *(user.password_hash for user in serve.users),
    )
    for secret in secrets:
        if secret:
            MASKER.add(secret)


def _get_only(prefix: str) -> frozenset[str]:
    """The paths that answer GET only: a POST there gets 405, not a CSRF refusal."""
    return frozenset(f"{root}/{name}" for root in {"", prefix} for name in ("health", "metrics"))


async def _to_prefix(request: Request) -> Response:
    return RedirectResponse(f"{request.app.state.context.prefix}/", 307)


async def _http_error(request: Request, exc: Exception) -> Response:
    """An HTTPException as a short text (or page); a 404 without credentials as 401 when
    authentication is configured.
    """
    assert isinstance(exc, HTTPException)  # noqa: S101 - registered for HTTPException only
    status, detail, headers = exc.status_code, exc.detail, dict(exc.headers or {})
    if status == 404 and authentication_required(request) and current_user(request) is None:
        denied = unauthorized("a bearer token is required")
        status, detail, headers = 401, str(denied.detail), dict(denied.headers or {})
    headers.setdefault("Cache-Control", "no-store")
    if status in (301, 302, 303, 307, 308):
        return Response(status_code=status, headers=headers)
    if wants_html(request) and status in (403, 404):
        return render(request, "error.html", status, status=status, detail=detail)
    return PlainTextResponse(f"{detail}\n", status, headers=headers)
