"""``GET/POST {prefix}/login``, and ``POST {prefix}/logout``.

A login checks a ``[[serve.users]]`` password (or, with the name ``token``, the serve
token) and starts a new session; a wrong one gets the form again with 401. The login
form's own CSRF token (from an anonymous session) is checked by
:class:`~chaperone.web._csrf.CsrfGuard`, so another site cannot sign a browser in.
"""

from __future__ import annotations

import hmac

import structlog
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from chaperone.config import Settings
from chaperone.web._auth import TOKEN_USER
from chaperone.web._passwords import verify_password
from chaperone.web._sessions import end_session, start_session
from chaperone.web._templates import render

__all__ = ["account_routes", "safe_next"]

_log = structlog.get_logger("chaperone.serve")
_MAX_FIELD = 1024


def safe_next(prefix: str, value: str | None) -> str:
    """Where to go after signing in: ``value`` when it is a path inside the app, else
    the overview (never another site).
    """
    home = f"{prefix}/"
    if not value or not value.startswith(home if prefix else "/") or value.startswith("//"):
        return home
    if "\\" in value or any(ord(char) < 32 for char in value):
        return home
    return value


def _check(settings: Settings, name: str, password: str) -> bool:
    token = settings.health.token
    if name == TOKEN_USER and token:
        return hmac.compare_digest(password.encode(), token.encode())
    entry = next((user for user in settings.serve.users if user.name == name), None)
    return verify_password(password, entry.password_hash if entry else None)


async def login_form(request: Request) -> Response:
    """The login form (with ``next``, where to go after)."""
    prefix = request.app.state.context.prefix
    target = safe_next(prefix, request.query_params.get("next"))
    return render(request, "login.html", next=target, error=None, name="")


async def login(request: Request) -> Response:
    """Check the name and password; on success start a session and go on."""
    settings: Settings = request.app.state.context.settings
    prefix = request.app.state.context.prefix
    form = await request.form()
    name = str(form.get("name") or "").strip()[:_MAX_FIELD]
    password = str(form.get("password") or "")[:_MAX_FIELD]
    target = safe_next(prefix, str(form.get("next") or ""))
    if not await run_in_threadpool(_check, settings, name, password):
        known = name == TOKEN_USER or any(user.name == name for user in settings.serve.users)
        # An unknown name is neither logged nor shown again: it may be a password typed
        # in the wrong field.
        _log.info("login refused", user=name if known else "(unknown)")
        return render(
            request,
            "login.html",
            401,
            next=target,
            error="Wrong name or password.",
            name=name if known else "",
        )
    start_session(request, name)
    _log.info("login", user=name)
    return RedirectResponse(target, 303)


async def logout(request: Request) -> Response:
    """End the session; back to the login form."""
    end_session(request)
    return RedirectResponse(f"{request.app.state.context.prefix}/login", 303)


def account_routes() -> list[Route]:
    """Login and logout, relative to the prefix."""
    return [
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
    ]
