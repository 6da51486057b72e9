"""Who is asking: the serve token (scripts), a signed-in user (session cookie), or a
user named by a trusted reverse proxy, each with a role.

- ``Authorization: Bearer <serve.token>``: the user ``token``, a responder. Any other
  ``Authorization`` header counts as wrong credentials (401), never as no credentials.
- ``serve.trusted_header`` from an address in ``serve.trusted_proxies``: that user, with
  the role of the ``[[serve.users]]`` entry of the same name, else ``serve.proxy_role``.
  The header from any other address is ignored.
- The session cookie of a login (:mod:`chaperone.web._login`).
- Nothing configured at all (only allowed on loopback): everyone who asks for a loopback
  host name (``Host: 127.0.0.1``, ``localhost``, ``[::1]``) is ``local``, a responder, as
  anyone on the machine could run the CLI. Another host name gets nobody, so a web page
  that rebinds its own name to 127.0.0.1 cannot act through a browser.

Every comparison of a secret is made in constant time.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import TYPE_CHECKING, Final
from urllib.parse import urlencode

import attrs
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request

from chaperone.config import Role, ServeSettings
from chaperone.web._sessions import session_of, start_session

if TYPE_CHECKING:
    from chaperone.web._context import WebContext

__all__ = [
    "PING_KEY_HEADER",
    "TOKEN_USER",
    "Role",
    "User",
    "check_ping_key",
    "csrf_token",
    "current_user",
    "require",
    "wants_html",
]

TOKEN_USER: Final = "token"  # noqa: S105 - a user name, not a password
"""The name of whoever presents the serve token (a session of a token login too)."""
LOCAL_USER: Final = "local"
PING_KEY_HEADER: Final = "X-Chaperone-Ping-Key"
_USER: Final = "chaperone_user"


@attrs.frozen
class User:
    """Someone signed in: a name and what they may do."""

    name: str
    role: Role

    def may(self, role: Role) -> bool:
        """Whether this user may do what ``role`` may."""
        return self.role == Role.RESPONDER or role == Role.VIEWER


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(
        given.encode("utf-8", "surrogateescape"), expected.encode("utf-8", "surrogateescape")
    )


def _context(connection: HTTPConnection) -> WebContext:
    context: WebContext = connection.app.state.context
    return context


def bearer_token(connection: HTTPConnection) -> str | None:
    """The credentials of an ``Authorization: Bearer`` header ("" for another scheme or a
    header without them), None without the header.
    """
    header = connection.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, credentials = header.strip().partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else ""


def from_trusted_proxy(connection: HTTPConnection, serve: ServeSettings) -> bool:
    """Whether the request came straight from an address of ``serve.trusted_proxies``."""
    client = connection.client
    if client is None:
        return False
    try:
        address = ipaddress.ip_address(client.host)
    except ValueError:
        return False
    return any(address in network for network in serve.trusted_proxies)


def _role_of(name: str, serve: ServeSettings, default: Role | None) -> Role | None:
    for entry in serve.users:
        if entry.name == name:
            return entry.role
    return default


def current_user(connection: HTTPConnection) -> User | None:
    """Who is asking, or None (no credentials, or wrong ones)."""
    state = connection.scope.setdefault("state", {})
    if _USER not in state:
        state[_USER] = _authenticate(connection)
    user: User | None = state[_USER]
    return user


def _authenticate(connection: HTTPConnection) -> User | None:
    settings = _context(connection).settings
    serve, token = settings.serve, settings.health.token
    given = bearer_token(connection)
    if given is not None:
        return User(TOKEN_USER, Role.RESPONDER) if token and _same(given, token) else None
    if serve.trusted_header and from_trusted_proxy(connection, serve):
        name = connection.headers.get(serve.trusted_header, "").strip()
        if name:
            return User(name, _role_of(name, serve, serve.proxy_role) or serve.proxy_role)
    session = session_of(connection)
    if session is not None and session.user is not None:
        if session.user == TOKEN_USER and token:
            return User(TOKEN_USER, Role.RESPONDER)
        role = _role_of(session.user, serve, None)
        if role is not None:
            return User(session.user, role)
    if not (token or serve.authentication_configured) and _asks_for_loopback(connection):
        return User(LOCAL_USER, Role.RESPONDER)
    return None


def _asks_for_loopback(connection: HTTPConnection) -> bool:
    host = (connection.url.hostname or "").strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def authentication_required(connection: HTTPConnection) -> bool:
    """Whether anything but loopback openness guards the app (token, users, proxy)."""
    settings = _context(connection).settings
    return bool(settings.health.token or settings.serve.authentication_configured)


def wants_html(connection: HTTPConnection) -> bool:
    """Whether the client is a browser asking for a page (``Accept`` names HTML)."""
    return "text/html" in connection.headers.get("Accept", "")


def unauthorized(detail: str = "credentials are required") -> HTTPException:
    """A 401 with the challenge a script understands."""
    return HTTPException(401, detail, headers={"WWW-Authenticate": 'Bearer realm="chaperone"'})


def require(request: Request, role: Role = Role.VIEWER) -> User:
    """The user, when they may act as ``role``. Otherwise raise: a browser without
    credentials is sent to the login page (303), a script gets 401, wrong credentials get
    401 and a user without the role 403.
    """
    user = current_user(request)
    if user is None:
        if bearer_token(request) is None and wants_html(request) and request.method == "GET":
            prefix = _context(request).prefix
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            location = f"{prefix}/login?{urlencode({'next': target})}"
            raise HTTPException(303, "sign in first", headers={"Location": location})
        raise unauthorized()
    if not user.may(role):
        raise HTTPException(403, f"{user.name} is a {user.role}: a {role} may do this")
    return user


def csrf_token(request: HTTPConnection) -> str:
    """The token a form of this session must send back (field ``csrf_token``), starting
    a session for it if the request has none.
    """
    session = session_of(request)
    if session is None:
        session = start_session(request, None)
    return session.csrf


def ping_key_given(connection: HTTPConnection) -> str | None:
    """The ping key the request carries (header, else ``?key=``), or None."""
    return connection.headers.get(PING_KEY_HEADER) or connection.query_params.get("key")


def check_ping_key(request: HTTPConnection, job: str) -> bool:
    """Whether the request may check in for ``job``: it carries the job's own key
    (``[serve.ping_keys]``), the global ``serve.ping_key`` or the serve token, in the
    ``X-Chaperone-Ping-Key`` header or as ``?key=``, or the serve token as a bearer
    token. Every key is compared, in constant time.
    """
    settings = _context(request).settings
    token = settings.health.token
    candidates = [
        key for key in (settings.serve.ping_keys.get(job), settings.serve.ping_key, token) if key
    ]
    given = [key for key in (ping_key_given(request), bearer_token(request)) if key]
    matched = False
    for key in given:
        for candidate in candidates:
            matched |= _same(key, candidate)
    return matched
