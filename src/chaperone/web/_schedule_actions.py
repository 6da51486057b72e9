"""Pausing and resuming a schedule from the pages or through the API.

Forms (``POST {prefix}/schedules/{job}/pause`` and ``.../resume``, the addresses
:class:`~chaperone.web.pages._links.Links` gives) carry the session's CSRF token and
answer with a redirect (303) to the schedule list. The API (``POST
{prefix}/api/schedules/{job}/pause`` and ``.../resume``) takes the serve token as a bearer
token, needs no body, and answers the schedule's new state as JSON. Both need a
responder, as the maintenance actions do; a job without a schedule is a 404.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Final

import structlog
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from chaperone.schedules import Schedule, pause, resume, schedule_of, schedule_state
from chaperone.store import Store
from chaperone.web._auth import Role, User, require
from chaperone.web._context import WebContext

__all__ = ["schedule_action_routes"]

_log = structlog.get_logger("chaperone.serve")
_NO_STORE: Final = {"Cache-Control": "no-store"}


class _NoScheduleError(LookupError):
    """The job named has no schedule."""


_SCHEDULE_ACTIONS: Final[dict[str, Callable[[Store, str, datetime], object]]] = {
    "pause": pause,
    "resume": resume,
}


def _context(request: Request) -> WebContext:
    context: WebContext = request.app.state.context
    return context


def _act(context: WebContext, user: User, name: str, job: str) -> dict[str, Any]:
    """Do ``name`` (pause or resume) to the schedule of ``job`` as ``user``; the
    schedule's state after, as ``chaperone schedules --json`` prints it. Raise
    :class:`_NoScheduleError` when the job has no schedule.
    """
    store = context.store()
    schedule: Schedule | None = schedule_of(context.settings, store, job)
    if schedule is None:
        raise _NoScheduleError(job)
    now = context.clock.now()
    _SCHEDULE_ACTIONS[name](store, job, now)
    _log.info(f"schedule {name}d", job=job, by=user.name)
    return schedule_state(schedule, store, now).to_public()


async def _take_action(request: Request, name: str) -> dict[str, Any]:
    """The action ``name`` on the schedule the path names, by the responder signed in."""
    user = require(request, Role.RESPONDER)
    job = request.path_params["job"]
    return await run_in_threadpool(_act, _context(request), user, name, job)


def _form_action(name: str) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            await _take_action(request, name)
        except _NoScheduleError as exc:
            raise HTTPException(404, f"no schedule for job {exc.args[0]!r}") from None
        return RedirectResponse(f"{_context(request).prefix}/schedules", 303)

    endpoint.__name__ = f"{name}_schedule_form"
    endpoint.__doc__ = f"The {name} button of a schedule."
    return endpoint


def _api_action(name: str) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            answer = await _take_action(request, name)
        except _NoScheduleError as exc:
            error = f"no schedule for job {exc.args[0]!r}"
            return JSONResponse({"ok": False, "error": error}, 404, _NO_STORE)
        return JSONResponse({"ok": True, name: answer}, headers=_NO_STORE)

    endpoint.__name__ = f"{name}_schedule_api"
    endpoint.__doc__ = f"The API's {name} of a schedule."
    return endpoint


def schedule_action_routes() -> list[BaseRoute]:
    """The schedule forms' and API's routes, relative to the prefix."""
    routes: list[BaseRoute] = []
    for name in _SCHEDULE_ACTIONS:
        routes.append(
            Route(f"/schedules/{{job:path}}/{name}", _form_action(name), methods=["POST"])
        )
        routes.append(
            Route(f"/api/schedules/{{job:path}}/{name}", _api_action(name), methods=["POST"])
        )
    return routes
