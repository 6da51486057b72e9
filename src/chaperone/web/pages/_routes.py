"""The page routes: plain Starlette routes, each behind a viewer's login, reading the
store in Starlette's thread pool (the handlers are synchronous).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from chaperone._exceptions import StoreError
from chaperone._secrets import MASKER
from chaperone.incidents import find_incident, open_incidents
from chaperone.web._auth import Role, csrf_token, require
from chaperone.web.pages._history import history_page, page_number
from chaperone.web.pages._incidents import incident_page
from chaperone.web.pages._jobs import STATES, job_page, job_rows
from chaperone.web.pages._links import Links
from chaperone.web.pages._maintenance import maintenance_page
from chaperone.web.pages._moments import moment
from chaperone.web.pages._overview import overview
from chaperone.web.pages._render import REFRESH_SECONDS, STATIC_DIRECTORY, render
from chaperone.web.pages._schedules import job_schedule, schedules_page

if TYPE_CHECKING:
    from chaperone.web import WebContext

__all__ = ["PAGE_ROUTES"]

MAX_FILTER: Final = 200
"""The longest name filter read from ``?name=`` (longer is cut)."""
JOB_LIST_LIMIT: Final = 200
"""Jobs the job list shows at most (the newest); the filters narrow it down."""

Page = Callable[[Request, "WebContext", dict[str, Any]], Response]
"""A page's own work: given the request, the context and the common template values."""


def _context(request: Request) -> WebContext:
    context: WebContext = request.app.state.context
    return context


def _page(build: Page) -> Callable[[Request], Response]:
    """A route handler: a viewer's login first, then ``build`` with the values every page
    shows (the user, whether they may act, the form token, the links, now). A store
    that cannot be read is a 503 page saying why.
    """

    def handler(request: Request) -> Response:
        user = require(request, Role.VIEWER)
        context = _context(request)
        now = context.clock.now()
        common = {
            "user": user,
            "can_act": user.role == Role.RESPONDER,
            "csrf_token": csrf_token(request),
            "now": now,
            "moment": partial(moment, now=now),
        }
        try:
            return build(request, context, common)
        except StoreError as exc:
            return render(
                request,
                "unavailable.html",
                _links(context),
                {**common, "message": f"The store cannot be read: {MASKER.mask(str(exc))}"},
                status_code=503,
            )

    handler.__name__ = build.__name__
    handler.__doc__ = build.__doc__
    return handler


def _links(context: WebContext) -> Links:
    return Links(context.prefix)


def overview_page(request: Request, context: WebContext, common: dict[str, Any]) -> Response:
    """Open incidents, jobs that need a look, delivery health, maintenance on now."""
    store = context.store()
    data = overview(
        store,
        context.settings,
        common["now"],
        incidents=open_incidents(store),
        health=context.health(),
    )
    return render(
        request,
        "overview.html",
        _links(context),
        {**common, "page": data, "refresh_seconds": REFRESH_SECONDS},
    )


def jobs_page(request: Request, context: WebContext, common: dict[str, Any]) -> Response:
    """Every job, filtered by ``?state=`` and ``?name=``."""
    state = request.query_params.get("state", "")
    if state not in STATES:
        state = ""
    name = request.query_params.get("name", "")[:MAX_FILTER]
    rows = job_rows(context.store(), common["now"], states=(state,) if state else (), name=name)
    return render(
        request,
        "jobs.html",
        _links(context),
        {
            **common,
            "jobs": rows[:JOB_LIST_LIMIT],
            "more_jobs": max(0, len(rows) - JOB_LIST_LIMIT),
            "states": STATES,
            "state": state,
            "name": name,
        },
    )


def _not_found(
    request: Request, context: WebContext, common: dict[str, Any], message: str
) -> Response:
    """The 404 page, saying what is not there."""
    links = _links(context)
    return render(request, "not_found.html", links, {**common, "message": message}, status_code=404)


def job_detail_page(request: Request, context: WebContext, common: dict[str, Any]) -> Response:
    """One job: what the alerts link to; a 404 page for an id no job has."""
    supervision_id = request.path_params["supervision_id"]
    store = context.store()
    data = job_page(store, supervision_id, common["now"], open_incidents(store))
    if data is None:
        return _not_found(request, context, common, f"There is no job with id {supervision_id}.")
    schedule = job_schedule(context.settings, store, data.job.name, common["now"])
    return render(
        request,
        "job.html",
        _links(context),
        {**common, "page": data, "schedule": schedule, "refresh_seconds": REFRESH_SECONDS},
    )


def incidents_page(request: Request, context: WebContext, common: dict[str, Any]) -> Response:
    """The open incidents, newest first."""
    return render(
        request,
        "incidents.html",
        _links(context),
        {**common, "incidents": open_incidents(context.store())},
    )


def incident_detail_page(request: Request, context: WebContext, common: dict[str, Any]) -> Response:
    """One open incident with its alerts and the responder's buttons."""
    alert_type = request.path_params["type"]
    key = request.path_params["key"]
    store = context.store()
    incident = find_incident(store, alert_type, key)
    if incident is None:
        message = f"There is no open incident {alert_type} {key}."
        return _not_found(request, context, common, message)
    return render(
        request,
        "incident.html",
        _links(context),
        {**common, "page": incident_page(store, incident, common["now"])},
    )


def history_list_page(request: Request, context: WebContext, common: dict[str, Any]) -> Response:
    """The alert history, ``?page=N``."""
    page = page_number(request.query_params.get("page"))
    return render(
        request,
        "history.html",
        _links(context),
        {**common, "page": history_page(context.store(), page, common["now"])},
    )


def maintenance_list_page(
    request: Request, context: WebContext, common: dict[str, Any]
) -> Response:
    """Maintenance windows, with the form to start one."""
    data = maintenance_page(context.settings, context.store(), common["now"])
    return render(request, "maintenance.html", _links(context), {**common, "page": data})


def schedule_list_page(request: Request, context: WebContext, common: dict[str, Any]) -> Response:
    """Every schedule, trouble first, ``?state=`` and ``?page=N``."""
    data = schedules_page(
        context.settings,
        context.store(),
        common["now"],
        state=request.query_params.get("state", ""),
        page=page_number(request.query_params.get("page")),
    )
    return render(
        request,
        "schedules.html",
        _links(context),
        {**common, "page": data, "refresh_seconds": REFRESH_SECONDS},
    )


PAGE_ROUTES: Final[list[BaseRoute]] = [
    Route("/", _page(overview_page), name="overview"),
    Route("/jobs", _page(jobs_page), name="jobs"),
    Route("/jobs/{supervision_id}", _page(job_detail_page), name="job"),
    Route("/incidents", _page(incidents_page), name="incidents"),
    Route("/incidents/{type}/{key:path}", _page(incident_detail_page), name="incident"),
    Route("/history", _page(history_list_page), name="history"),
    Route("/maintenance", _page(maintenance_list_page), name="maintenance"),
    Route("/schedules", _page(schedule_list_page), name="schedules"),
    Mount("/static", StaticFiles(directory=STATIC_DIRECTORY), name="static"),
]
"""The pages, with paths relative to the app's prefix (mount them under it)."""
