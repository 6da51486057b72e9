"""A real HTTP server on 127.0.0.1 that records every request and answers as scripted.

Use it as a context manager::

    with RecordingServer([Reply(status=500), Reply(status=200)]) as server:
        ...  # point a channel at server.url_for("/hook")
        server.wait_for_requests(2)

Replies are used in order, one per request; once they run out, ``default`` answers
every further request. A reply can echo the request back in its body, add headers
(``Retry-After``), or hold the request open for a while before answering (a hanging
service); closing the server releases every held request at once.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self

import attrs

__all__ = ["RecordedRequest", "RecordingServer", "Reply", "unused_port"]

HOST = "127.0.0.1"
_MAX_BODY = 10 * 1024 * 1024


@attrs.frozen(kw_only=True)
class RecordedRequest:
    """One request the server received."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    received_at: float
    """``time.monotonic()`` when the request arrived."""

    def json(self) -> object:
        """The body parsed as JSON."""
        import json

        return json.loads(self.body)


BodyMaker = Callable[[RecordedRequest, str], str | bytes]
"""Builds a reply body from the request and the server's base URL."""


@attrs.frozen(kw_only=True)
class Reply:
    """How to answer one request."""

    status: int = 200
    body: str | bytes | BodyMaker = "ok"
    headers: Mapping[str, str] = attrs.field(factory=dict)
    hang: float = 0.0
    """Seconds to hold the request before answering (cut short when the server closes)."""

    @classmethod
    def echo(cls, status: int, headers: Mapping[str, str] | None = None) -> Reply:
        """Answer ``status`` with a body quoting the full URL and the path requested, as a
        careless service's error page would.
        """

        def body(request: RecordedRequest, base_url: str) -> str:
            return (
                f'{{"error": "invalid_payload", "url": "{base_url}{request.path}", '
                f'"path": "{request.path}"}}'
            )

        return cls(status=status, body=body, headers=dict(headers or {}))


def unused_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (for a refused connection)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
    return port


class RecordingServer:
    """A threaded HTTP server on 127.0.0.1 with a scripted sequence of replies."""

    def __init__(self, replies: Iterable[Reply] = (), *, default: Reply | None = None) -> None:
        self._lock = threading.Condition()
        self._replies = list(replies)
        self._default = default or Reply()
        self._requests: list[RecordedRequest] = []
        self._closing = threading.Event()
        self._server = ThreadingHTTPServer((HOST, 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="recording-http-server",
            daemon=True,
        )

    # -- lifetime ------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release held requests, stop serving and close the socket."""
        self._closing.set()
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=10)
        self._server.server_close()

    # -- what a test reads ---------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port the server listens on."""
        port: int = self._server.server_address[1]
        return port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{HOST}:{self.port}"

    def url_for(self, path: str) -> str:
        """The full URL of ``path`` on this server."""
        return self.url + (path if path.startswith("/") else "/" + path)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def script(self, replies: Iterable[Reply], *, default: Reply | None = None) -> None:
        """Replace the replies still to come (and the default, when given)."""
        with self._lock:
            self._replies = list(replies)
            if default is not None:
                self._default = default

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[RecordedRequest]:
        """Wait until at least ``count`` requests arrived (at most ``timeout`` seconds);
        return every request received.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self._requests) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._lock.wait(remaining)
            return list(self._requests)

    # -- called by the handler -----------------------------------------------------------

    def _record(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self._requests.append(request)
            reply = self._replies.pop(0) if self._replies else self._default
            self._lock.notify_all()
        return reply

    def _hold(self, seconds: float) -> None:
        if seconds > 0:
            self._closing.wait(seconds)


def _handler_for(server: RecordingServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def _handle(self) -> None:
            length = min(int(self.headers.get("Content-Length") or 0), _MAX_BODY)
            body = self.rfile.read(length) if length else b""
            request = RecordedRequest(
                method=self.command,
                path=self.path,
                headers=dict(self.headers.items()),
                body=body,
                received_at=time.monotonic(),
            )
            reply = server._record(request)
            server._hold(reply.hang)
            content = reply.body(request, server.url) if callable(reply.body) else reply.body
            payload = content.encode() if isinstance(content, str) else content
            try:
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test): nothing to answer

        do_GET = do_POST = do_PUT = _handle  # noqa: N815 - http.server's naming

        def log_message(self, format: str, *args: object) -> None:
            """Keep test output quiet."""

    return Handler
