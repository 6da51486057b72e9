"""Check-ins over HTTP, for jobs on hosts without Python: ``POST {prefix}/ping/{job}/start``,
``POST {prefix}/ping/{job}`` (success), ``POST {prefix}/ping/{job}/fail`` (the body, if
any, is the error) and ``POST {prefix}/ping/{job}/heartbeat``.

Each writes what ``chaperone run`` writes (:func:`chaperone.supervision.checkins.check_in`),
so stuck, timeout and failure detection apply. A check-in needs a ping key (the job's own,
the global one, or the serve token) in the ``X-Chaperone-Ping-Key`` header or as
``?key=``. The query may also carry ``run`` (pairs the start and end of overlapping
runs), and for a run it starts ``timeout``, ``heartbeat_interval`` and
``missed_heartbeats``; ``alert_on_failure=1`` on a run's start or failure makes its
failure raise ``job_failed``.

Answers: 200 with a small JSON body, 400 naming a bad field, 401 without a valid key,
413 for a failure body over :data:`MAX_ERROR_BODY`, 503 when the store cannot take it
(``curl --retry`` tries again).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final

import structlog
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from chaperone._durations import parse_duration
from chaperone._exceptions import StoreError
from chaperone._secrets import describe
from chaperone.supervision._records import JobRecord
from chaperone.supervision.checkins import (
    CheckInKind,
    CheckInOptions,
    InvalidCheckInError,
    check_in,
)
from chaperone.web._auth import check_ping_key, unauthorized
from chaperone.web._context import WebContext

if TYPE_CHECKING:
    from chaperone.schedules import Schedule

__all__ = ["MAX_ERROR_BODY", "checkin_routes"]

MAX_ERROR_BODY: Final = 10 * 1024
"""The largest failure body taken, in bytes (the stored error is cut shorter still)."""

_log = structlog.get_logger("chaperone.serve")
_NO_STORE: Final = {"Cache-Control": "no-store"}
_FLAGS: Final = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


class _BodyTooLargeError(Exception):
    """The failure body is longer than :data:`MAX_ERROR_BODY`."""


def _context(request: Request) -> WebContext:
    context: WebContext = request.app.state.context
    return context


def _refused(status: int, field: str | None, message: str) -> Response:
    body = {"ok": False, "error": message}
    if field is not None:
        body["field"] = field
    return JSONResponse(body, status, headers=_NO_STORE)


def _seconds(request: Request, name: str) -> float | None:
    """The duration ``name`` of the query in seconds, None when absent."""
    text = request.query_params.get(name)
    if text is None:
        return None
    try:
        return parse_duration(text).total_seconds()
    except ValueError:
        raise InvalidCheckInError(name, "must be a duration like 90, 30s, 5m or 2h") from None


def _options(request: Request, schedule: Schedule | None) -> CheckInOptions:
    """The options of a run the check-in starts, from the query (its validators name a
    bad field); what the query leaves unsaid comes from the job's ``[[schedules]]`` entry
    if it has one: failures alerted as it says, its ``max_runtime`` as the timeout.
    """
    missed = request.query_params.get("missed_heartbeats", "3")
    try:
        missed_heartbeats = int(missed)
    except ValueError:
        raise InvalidCheckInError("missed_heartbeats", "must be a whole number") from None
    timeout = _seconds(request, "timeout")
    if timeout is None and schedule is not None and schedule.max_runtime is not None:
        timeout = schedule.max_runtime.total_seconds()
    return CheckInOptions(
        timeout=timeout,
        heartbeat_interval=_seconds(request, "heartbeat_interval"),
        missed_heartbeats=missed_heartbeats,
        alert_on_failure=_flag(
            request, "alert_on_failure", schedule is not None and schedule.alert_on_failure
        ),
    )


def _configured_schedule(context: WebContext, job: str) -> Schedule | None:
    """The ``[[schedules]]`` entry of ``job``, or None."""
    return next((each for each in context.settings.schedules if each.job == job), None)


def _flag(request: Request, name: str, default: bool = False) -> bool:
    """The yes-or-no ``name`` of the query: 1/true/yes or 0/false/no, ``default`` when
    absent.
    """
    text = request.query_params.get(name)
    if text is None:
        return default
    answer = _FLAGS.get(text.strip().lower())
    if answer is None:
        raise InvalidCheckInError(name, "must be 1, true or yes, or 0, false or no")
    return answer


async def _error_text(request: Request) -> str | None:
    """The failure body as text (None when empty), refusing one that is too long."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_ERROR_BODY:
            raise _BodyTooLargeError
    text = body.decode("utf-8", "replace").strip()
    return text or None


def _answer(context: WebContext, record: JobRecord) -> Response:
    body = {
        "ok": True,
        "job": record.name,
        "supervision_id": record.supervision_id,
        "state": record.state.value,
        "url": f"{context.prefix}/jobs/{record.supervision_id}",
    }
    return JSONResponse(body, headers=_NO_STORE)


def _endpoint(kind: CheckInKind) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        job = request.path_params["job"]
        if not check_ping_key(request, job):
            raise unauthorized("a ping key is required (X-Chaperone-Ping-Key or ?key=)")
        context = _context(request)
        try:
            options = _options(request, _configured_schedule(context, job))
            error = await _error_text(request) if kind is CheckInKind.FAIL else None
            record = await run_in_threadpool(
                check_in,
                context.store(),
                context.clock,
                job,
                kind,
                error=error,
                run=request.query_params.get("run"),
                options=options,
            )
        except InvalidCheckInError as exc:
            return _refused(400, exc.field, str(exc))
        except _BodyTooLargeError:
            return _refused(413, "body", f"the failure body is over {MAX_ERROR_BODY} bytes")
        except StoreError as exc:
            _log.warning("check-in not recorded", job=job, kind=kind.value, error=describe(exc))
            return _refused(503, None, "the store cannot take the check-in now: try again")
        _log.debug("check-in", job=job, kind=kind.value, supervision_id=record.supervision_id)
        return _answer(context, record)

    endpoint.__name__ = f"ping_{kind.value}"
    endpoint.__doc__ = f"Record a {kind.value} check-in of the job in the path."
    return endpoint


def checkin_routes() -> list[BaseRoute]:
    """The four check-in routes, relative to the prefix."""
    return [
        Route("/ping/{job}/start", _endpoint(CheckInKind.START), methods=["POST"]),
        Route("/ping/{job}/fail", _endpoint(CheckInKind.FAIL), methods=["POST"]),
        Route("/ping/{job}/heartbeat", _endpoint(CheckInKind.HEARTBEAT), methods=["POST"]),
        Route("/ping/{job}", _endpoint(CheckInKind.SUCCESS), methods=["POST"]),
    ]
