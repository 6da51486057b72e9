"""``GET /health`` (the JSON of ``chaperone health --json``; 200 while every check passes,
503 when one fails) and ``GET /metrics`` (Prometheus text), judged afresh per request.

Only GET is allowed (405 naming it, HEAD included). When any authentication is
configured, the caller must be signed in (the serve token, a session, a trusted proxy).
"""

from __future__ import annotations

import json
from typing import Final

import structlog
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from chaperone._secrets import MASKER, describe
from chaperone.metrics._prometheus import CONTENT_TYPE, render_metrics
from chaperone.web._auth import authentication_required, current_user, unauthorized
from chaperone.web._context import WebContext

__all__ = ["probe_routes"]

_log = structlog.get_logger("chaperone.serve")
_JSON: Final = "application/json"
_NO_STORE: Final = {"Cache-Control": "no-store"}
_ANY: Final = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _refusal(request: Request) -> Response | None:
    if authentication_required(request) and current_user(request) is None:
        raise unauthorized("a bearer token is required")
    if request.method != "GET":
        return PlainTextResponse("only GET\n", 405, headers={"Allow": "GET", **_NO_STORE})
    return None


def health(request: Request) -> Response:
    """The health report as JSON: 200 healthy, 503 not (or when it cannot be judged)."""
    refusal = _refusal(request)
    if refusal is not None:
        return refusal
    context: WebContext = request.app.state.context
    try:
        report = context.health()
    except Exception as exc:
        reason = describe(exc)
        _log.error("cannot judge health", path=request.url.path, error=reason)
        body = json.dumps({"healthy": False, "error": f"cannot judge health: {reason}"})
        return Response(body, 503, media_type=_JSON, headers=_NO_STORE)
    status = 200 if report.healthy else 503
    body = json.dumps(MASKER.mask_any(report.to_dict()), ensure_ascii=False)
    return Response(body, status, media_type=_JSON, headers=_NO_STORE)


def metrics(request: Request) -> Response:
    """The delivery counters and health gauges in Prometheus' text format."""
    refusal = _refusal(request)
    if refusal is not None:
        return refusal
    context: WebContext = request.app.state.context
    try:
        text = render_metrics(context.health)
    except Exception as exc:
        _log.error("cannot read the metrics", path=request.url.path, error=describe(exc))
        return PlainTextResponse("cannot read the metrics\n", 503, headers=_NO_STORE)
    return Response(text, 200, headers={"Content-Type": CONTENT_TYPE, **_NO_STORE})


def probe_routes() -> list[Route]:
    """``/health`` and ``/metrics``, any method (the endpoints answer 405 themselves)."""
    return [Route("/health", health, methods=_ANY), Route("/metrics", metrics, methods=_ANY)]
