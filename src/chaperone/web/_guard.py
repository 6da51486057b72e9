"""Every request in one debug line (method, path with secrets masked, status, client;
never a header), and an error inside a route answered with a 500 and one error line:
no traceback reaches the log or the client.
"""

from __future__ import annotations

import json

import structlog
from starlette.requests import HTTPConnection
from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chaperone._secrets import MASKER, describe

__all__ = ["RequestGuard"]

_log = structlog.get_logger("chaperone.serve")


class RequestGuard:
    """ASGI middleware: log each request; turn an exception into a 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request; log it once it is answered."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 0

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        connection = HTTPConnection(scope)
        path = scope.get("path", "") + (
            "?" + scope["query_string"].decode("latin-1") if scope.get("query_string") else ""
        )
        try:
            await self.app(scope, receive, sending)
        except Exception as exc:
            _log.error(
                "request failed",
                method=scope["method"],
                path=MASKER.mask(path),
                error=describe(exc),
            )
            if status == 0:
                status = 500
                await _failure(connection)(scope, receive, send)
        _log.debug(
            "request",
            method=scope["method"],
            path=MASKER.mask(path),
            status=status,
            client=connection.client.host if connection.client else None,
        )


def _failure(connection: HTTPConnection) -> Response:
    if "text/html" in connection.headers.get("Accept", ""):
        page = "<!doctype html><title>Error</title><h1>Something went wrong</h1>"
        body = page + "<p>The error is in the server's log.</p>"
        return HTMLResponse(body, 500)
    text = json.dumps({"error": "internal error: the server's log says more"})
    return Response(text, 500, media_type="application/json")
