"""CSRF protection: every POST must send back its session's token, as a ``csrf_token``
form field or an ``X-CSRF-Token`` header, or it is refused with 403.

Exempt are requests that carry their own proof, which a browser never adds by itself:
an ``Authorization`` header (the serve token, for scripts; a browser's cached Basic
credentials count as wrong ones, 401); and the paths given as exempt: endpoints that
take no POST (they answer 405) and, by prefix, the check-ins (a ping key is their only
credential, so a forged request has nothing to borrow; without one they answer 401).
A ping key elsewhere exempts nothing: any page can put ``?key=`` in a form's address.
The body is read here (at most :data:`MAX_BODY` bytes, 413 past that) and handed on
unchanged.
"""

from __future__ import annotations

import hmac
from typing import Final

from starlette.datastructures import FormData
from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chaperone.web._sessions import session_of

__all__ = ["CSRF_FIELD", "CSRF_HEADER", "MAX_BODY", "CsrfGuard"]

CSRF_FIELD: Final = "csrf_token"
CSRF_HEADER: Final = "X-CSRF-Token"
MAX_BODY: Final = 1024 * 1024
_FORMS: Final = ("application/x-www-form-urlencoded", "multipart/form-data")


class _TooLargeError(Exception):
    """The body is longer than :data:`MAX_BODY`."""


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise _TooLargeError
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _exempt(connection: HTTPConnection) -> bool:
    return "authorization" in connection.headers


class CsrfGuard:
    """ASGI middleware refusing a POST whose CSRF token is missing or wrong."""

    def __init__(
        self,
        app: ASGIApp,
        exempt: frozenset[str] = frozenset(),
        exempt_prefixes: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.exempt = exempt
        self.exempt_prefixes = exempt_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check a POST's token, then pass the request on with its body."""
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] in self.exempt
            or scope["path"].startswith(self.exempt_prefixes)
        ):
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        if _exempt(connection):
            await self.app(scope, receive, send)
            return
        try:
            body = await _read_body(receive)
        except _TooLargeError:
            await PlainTextResponse("request body too large\n", 413)(scope, receive, send)
            return
        given = connection.headers.get(CSRF_HEADER, "")
        content_type = connection.headers.get("content-type", "")
        if not given and content_type.startswith(_FORMS):
            given = await _form_token(scope, body)
        session = session_of(connection)
        if session is None or not given or not _same(given, session.csrf):
            refusal = PlainTextResponse("refused: the form's CSRF token is missing or wrong\n", 403)
            await refusal(scope, receive, send)
            return
        await self.app(scope, _replay(body), send)


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )


async def _form_token(scope: Scope, body: bytes) -> str:
    form: FormData
    try:
        form = await Request(scope, _replay(body)).form()
    except Exception:
        return ""
    value = form.get(CSRF_FIELD)
    await form.close()
    return value if isinstance(value, str) else ""


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive
