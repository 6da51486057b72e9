"""Signed session cookies: who signed in, their CSRF token and when, nothing else.

The cookie is signed with ``serve.session_secret`` (or a key made at start) and carries
its own issue time, judged on the app's clock: after :data:`SESSION_LIFETIME` it no
longer counts. HttpOnly, SameSite=Lax, the path the app's prefix, Secure when the request
came over https (or ``serve.secure_cookies`` says the proxy in front ends TLS).
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any, Final

import attrs
from itsdangerous import BadSignature, URLSafeSerializer
from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chaperone._clock import Clock

__all__ = [
    "COOKIE",
    "SESSION_LIFETIME",
    "Session",
    "SessionCookie",
    "Sessions",
    "end_session",
    "session_of",
    "start_session",
]

COOKIE: Final = "chaperone_session"
_NEW_SESSION: Final = "chaperone_new_session"
SESSION_LIFETIME: Final = timedelta(hours=12)


@attrs.frozen
class Session:
    """One browser's session: the user signed in (None before a login) and its CSRF
    token.
    """

    user: str | None
    csrf: str
    issued_at: float


class Sessions:
    """Reads and writes the session cookie for an app under ``path``."""

    def __init__(self, secret: str | None, clock: Clock, *, path: str, secure: bool) -> None:
        self._serializer = URLSafeSerializer(
            secret or secrets.token_urlsafe(32), salt="chaperone-session"
        )
        self._clock = clock
        self._path = path or "/"
        self._secure = secure

    def read(self, connection: HTTPConnection) -> Session | None:
        """The request's session, or None (no cookie, a bad signature, too old)."""
        cookie = connection.cookies.get(COOKIE)
        if not cookie:
            return None
        try:
            data: Any = self._serializer.loads(cookie)
            session = Session(
                user=None if data["u"] is None else str(data["u"]),
                csrf=str(data["c"]),
                issued_at=float(data["t"]),
            )
        except (BadSignature, KeyError, TypeError, ValueError):
            return None
        age = self._clock.timestamp() - session.issued_at
        if not 0 <= age < SESSION_LIFETIME.total_seconds():
            return None
        return session

    def start(self, user: str | None) -> Session:
        """A new session for ``user`` (None: anonymous, for the login form), with a fresh
        CSRF token.
        """
        return Session(user=user, csrf=secrets.token_urlsafe(32), issued_at=self._clock.timestamp())

    def write(self, response: Response, connection: HTTPConnection, session: Session) -> None:
        """Set ``session`` as the response's cookie."""
        value = self._serializer.dumps(
            {"u": session.user, "c": session.csrf, "t": session.issued_at}
        )
        response.set_cookie(
            COOKIE,
            value,
            max_age=int(SESSION_LIFETIME.total_seconds()),
            path=self._path,
            httponly=True,
            samesite="lax",
            secure=self._secure or connection.url.scheme == "https",
        )

    def clear(self, response: Response, connection: HTTPConnection) -> None:
        """Remove the cookie."""
        response.delete_cookie(
            COOKIE,
            path=self._path,
            httponly=True,
            samesite="lax",
            secure=self._secure or connection.url.scheme == "https",
        )


def _sessions(connection: HTTPConnection) -> Sessions:
    sessions: Sessions = connection.app.state.sessions
    return sessions


def session_of(connection: HTTPConnection) -> Session | None:
    """The request's session: one started during this request (by a login or a form's
    CSRF token), else the one its cookie carries.
    """
    state = connection.scope.setdefault("state", {})
    if _NEW_SESSION in state:
        started: Session | None = state[_NEW_SESSION]
        return started
    return _sessions(connection).read(connection)


def start_session(connection: HTTPConnection, user: str | None) -> Session:
    """Start a new session for ``user``; :class:`SessionCookie` sends it with the
    response.
    """
    session = _sessions(connection).start(user)
    connection.scope.setdefault("state", {})[_NEW_SESSION] = session
    return session


def end_session(connection: HTTPConnection) -> None:
    """End the request's session: the response clears the cookie."""
    connection.scope.setdefault("state", {})[_NEW_SESSION] = None


class SessionCookie:
    """ASGI middleware: a session started or ended during a request goes out as a
    ``Set-Cookie`` header of its response.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; add the cookie to the response's head."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)

        async def sending(message: Message) -> None:
            state = scope.get("state", {})
            if message["type"] == "http.response.start" and _NEW_SESSION in state:
                carrier = Response()
                session: Session | None = state[_NEW_SESSION]
                if session is None:
                    _sessions(connection).clear(carrier, connection)
                else:
                    _sessions(connection).write(carrier, connection, session)
                headers = MutableHeaders(scope=message)
                for value in carrier.headers.getlist("set-cookie"):
                    headers.append("set-cookie", value)
                headers["cache-control"] = "no-store"
            await send(message)

        await self.app(scope, receive, sending)
