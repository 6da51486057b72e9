"""What a responder does from the pages or through the API: acknowledge an incident, undo
it, silence it, start and end a maintenance window.

Forms (``POST {prefix}/incidents/{type}/{key}/acknowledge`` and the others the pages
link to, :class:`~chaperone.web.pages._links.Links`) carry the session's CSRF token and
answer with a redirect (303) back to the page. The API (``POST
{prefix}/api/incidents/{type}/{key}/acknowledge``, ``.../unacknowledge``,
``.../silence``; ``GET {prefix}/api/incidents``) takes the serve token as a bearer token
and a JSON body, and answers JSON. Every action needs a responder; each runs in the
thread pool, as it reads the store and may deliver alerts.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any, Final
from urllib.parse import quote

import structlog
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from chaperone._durations import format_duration, format_time, parse_duration
from chaperone._matching import parse_match
from chaperone.incidents import (
    Incident,
    UnknownIncidentError,
    acknowledge,
    open_incidents,
    silence,
    unacknowledge,
)
from chaperone.maintenance import UnknownWindowError, end_windows, start_window
from chaperone.web._auth import Role, User, require
from chaperone.web._context import WebContext
from chaperone.web._csrf import MAX_BODY

__all__ = ["MAX_NOTE", "action_routes", "incident_json"]

MAX_NOTE: Final = 500
"""The longest acknowledgement note or reason kept, in characters (longer is cut)."""
MAX_SILENCE: Final = timedelta(days=7)
"""The longest a silence or a window started from the pages may last."""

_log = structlog.get_logger("chaperone.serve")
_NO_STORE: Final = {"Cache-Control": "no-store"}

Fields = Mapping[str, str]
Action = Callable[[WebContext, User, str, str, Fields], object]


class _BadFieldError(ValueError):
    """A form or JSON field that cannot be used; the message names it."""


class _BodyTooLargeError(Exception):
    """An API body longer than :data:`~chaperone.web._csrf.MAX_BODY` (the CSRF guard,
    which bounds a session's bodies, lets a bearer token's through unread).
    """


def _context(request: Request) -> WebContext:
    context: WebContext = request.app.state.context
    return context


def _text(fields: Fields, name: str) -> str:
    return str(fields.get(name) or "").strip()[:MAX_NOTE]


def _duration(fields: Fields, name: str = "duration") -> timedelta:
    text = _text(fields, name)
    try:
        length = parse_duration(text)
    except ValueError:
        raise _BadFieldError(f"{name}: must be a duration like 30m, 2h or 1d") from None
    if length <= timedelta(0) or length > MAX_SILENCE:
        raise _BadFieldError(f"{name}: must be more than 0s and at most 7d")
    return length


def incident_json(incident: Incident) -> dict[str, Any]:
    """An incident as the API answers it."""
    return {
        "type": incident.type,
        "key": incident.key,
        "state": incident.state,
        "title": incident.title,
        "severity": incident.severity,
        "priority": incident.priority,
        "opened_at": incident.opened_at.isoformat(),
        "last_alert_at": incident.last_alert_at.isoformat(),
        "alerts": incident.alerts,
        "supervision_id": incident.supervision_id,
        "acknowledged_by": incident.acknowledged_by,
        "acknowledged_at": None
        if incident.acknowledged_at is None
        else incident.acknowledged_at.isoformat(),
        "ack_note": incident.ack_note,
        "delivered_to": list(incident.delivered_to),
    }


# -- the actions themselves (run in the thread pool) -------------------------------------


def _acknowledge(context: WebContext, user: User, kind: str, key: str, fields: Fields) -> object:
    incident = acknowledge(context.chaperone(), kind, key, by=user.name, note=_text(fields, "note"))
    _log.info("incident acknowledged", type=kind, key=key, by=user.name)
    return incident_json(incident)


def _unacknowledge(context: WebContext, user: User, kind: str, key: str, fields: Fields) -> object:
    incident = unacknowledge(context.chaperone(), kind, key, by=user.name)
    _log.info("acknowledgement undone", type=kind, key=key, by=user.name)
    return incident_json(incident)


def _silence(context: WebContext, user: User, kind: str, key: str, fields: Fields) -> object:
    length = _duration(fields)
    window = silence(
        context.chaperone(),
        kind,
        key,
        by=user.name,
        duration=length,
        reason=_text(fields, "reason"),
    )
    _log.info("incident silenced", type=kind, key=key, by=user.name, window=window.id)
    return {
        "window": window.id,
        "ends_at": window.ends_at.isoformat(),
        "lasts": format_duration(length),
        "until": format_time(window.ends_at),
    }


_INCIDENT_ACTIONS: Final[dict[str, Action]] = {
    "acknowledge": _acknowledge,
    "unacknowledge": _unacknowledge,
    "silence": _silence,
}


# -- forms and API -----------------------------------------------------------------------


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {name: value for name, value in form.items() if isinstance(value, str)}


async def _json_body(request: Request) -> dict[str, str]:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise _BodyTooLargeError
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except ValueError:
        raise _BadFieldError("body: must be a JSON object") from None
    if not isinstance(data, dict):
        raise _BadFieldError("body: must be a JSON object")
    return {str(name): str(value) for name, value in data.items() if value is not None}


def _incident_page(context: WebContext, kind: str, key: str) -> str:
    return f"{context.prefix}/incidents/{quote(kind, safe='')}/{quote(key, safe='/')}"


class _RefusedError(Exception):
    """An incident action refused: its HTTP status and why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


Reader = Callable[[Request], Awaitable[dict[str, str]]]


async def _take_action(request: Request, name: str, read: Reader) -> tuple[str, str, object]:
    """Do the incident action ``name`` with the fields ``read`` takes from the request, as
    the responder signed in; return the incident's type and key and the action's answer.
    Raise :class:`_RefusedError` for an unknown incident (404), a bad field (400) or an
    oversize body (413).
    """
    user = require(request, Role.RESPONDER)
    context = _context(request)
    kind, key = request.path_params["type"], request.path_params["key"]
    try:
        fields = await read(request)
        answer = await run_in_threadpool(_INCIDENT_ACTIONS[name], context, user, kind, key, fields)
    except UnknownIncidentError:
        raise _RefusedError(404, f"no open {kind} incident for {key}") from None
    except _BadFieldError as exc:
        raise _RefusedError(400, str(exc)) from None
    except _BodyTooLargeError:
        raise _RefusedError(413, f"body: must be at most {MAX_BODY} bytes") from None
    return kind, key, answer


def _form_action(name: str) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            kind, key, _answer = await _take_action(request, name, _form)
        except _RefusedError as exc:
            raise HTTPException(exc.status, str(exc)) from None
        return RedirectResponse(_incident_page(_context(request), kind, key), 303)

    endpoint.__name__ = f"{name}_form"
    endpoint.__doc__ = f"The {name} form of an incident's page."
    return endpoint


def _api_action(name: str) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            _kind, _key, answer = await _take_action(request, name, _json_body)
        except _RefusedError as exc:
            return JSONResponse({"ok": False, "error": str(exc)}, exc.status, _NO_STORE)
        return JSONResponse({"ok": True, name: answer}, headers=_NO_STORE)

    endpoint.__name__ = f"{name}_api"
    endpoint.__doc__ = f"The API's {name} of an incident."
    return endpoint


async def list_incidents_api(request: Request) -> Response:
    """Every open incident, newest first, as JSON."""
    require(request, Role.VIEWER)
    context = _context(request)
    incidents = await run_in_threadpool(lambda: open_incidents(context.store()))
    return JSONResponse([incident_json(incident) for incident in incidents], headers=_NO_STORE)


async def start_maintenance(request: Request) -> Response:
    """The maintenance page's form: a window from now for ``duration``, matching
    ``match_type`` and ``match_key`` where given (globs).
    """
    require(request, Role.RESPONDER)
    context = _context(request)
    fields = await _form(request)
    try:
        length = _duration(fields)
        pairs = [
            f"{name}={value}"
            for name, value in (
                ("type", _text(fields, "match_type")),
                ("key", _text(fields, "match_key")),
            )
            if value
        ]
        matcher = parse_match(pairs)
    except (_BadFieldError, ValueError) as exc:
        raise HTTPException(400, str(exc)) from None

    def opening() -> None:
        now = context.clock.now()
        window = start_window(context.store(), now, length, matcher, _text(fields, "reason"))
        _log.info("maintenance window started", window=window.id, lasts=format_duration(length))

    await run_in_threadpool(opening)
    return RedirectResponse(f"{context.prefix}/maintenance", 303)


async def end_maintenance(request: Request) -> Response:
    """A window's End button: end it now and deliver its summary."""
    require(request, Role.RESPONDER)
    context = _context(request)
    window_id = request.path_params["window_id"]

    def ending() -> None:
        chaperone = context.chaperone()
        now = context.clock.now()
        for done in end_windows(context.settings, chaperone.runtime.store, now, window_id):
            if done.event is not None:
                chaperone.dispatch(done.event)
        _log.info("maintenance window ended", window=window_id)

    try:
        await run_in_threadpool(ending)
    except UnknownWindowError:
        raise HTTPException(404, f"no maintenance window {window_id}") from None
    return RedirectResponse(f"{context.prefix}/maintenance", 303)


def action_routes() -> list[BaseRoute]:
    """The forms' and the API's routes, relative to the prefix."""
    incident = "/incidents/{type}/{key:path}"
    routes: list[BaseRoute] = [
        Route("/api/incidents", list_incidents_api, methods=["GET"]),
        Route("/maintenance", start_maintenance, methods=["POST"]),
        Route("/maintenance/{window_id}/end", end_maintenance, methods=["POST"]),
    ]
    for name in _INCIDENT_ACTIONS:
        routes.append(Route(f"{incident}/{name}", _form_action(name), methods=["POST"]))
        routes.append(Route(f"/api{incident}/{name}", _api_action(name), methods=["POST"]))
    return routes
