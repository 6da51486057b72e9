"""The HTTP endpoint of ``chaperone serve``: ``GET /health`` and ``GET /metrics``.

A small threaded server from the standard library. Each request judges the health checks
afresh (:func:`~chaperone.metrics._health.check_health`), so what it answers is what
every process recorded; ``/health`` answers 200 while every check passes, 503 when one
fails. When a token is set,
every request needs ``Authorization: Bearer <token>`` (compared in constant time; 401
otherwise, whatever the path). Then: 404 for a path other than the two, 405 for a method
other than GET. Requests are logged at debug level, never with their headers.
"""

from __future__ import annotations

import hmac
import json
import socket
import socketserver
from collections.abc import Callable, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import structlog

from chaperone._secrets import MASKER, describe
from chaperone.metrics._health import HealthReport
from chaperone.metrics._prometheus import CONTENT_TYPE, render_metrics

__all__ = ["HealthServer"]

_log = structlog.get_logger("chaperone.serve")

_JSON = "application/json"
_TEXT = "text/plain; charset=utf-8"


class HealthServer(ThreadingHTTPServer):
    """Answers ``/health`` and ``/metrics`` from ``read()``, a fresh report per request.

    Binds on construction (``port`` 0 takes a free port; :attr:`url` names the real
    one) and raises OSError when it cannot. Serve with ``serve_forever()``; stop with
    ``shutdown()`` from another thread, then ``server_close()``.
    """

    daemon_threads = True

    def __init__(
        self,
        read: Callable[[], HealthReport],
        *,
        host: str,
        port: int,
        token: str | None = None,
    ) -> None:
        self.read_report = read
        self.token = token
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, port), _Handler)

    def server_bind(self) -> None:
        """Bind without HTTPServer's reverse DNS lookup of the host (slow off-line)."""
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` with the port actually bound."""
        host = f"[{self.server_name}]" if ":" in self.server_name else self.server_name
        return f"http://{host}:{self.server_port}"


class _Handler(BaseHTTPRequestHandler):
    server: HealthServer

    def version_string(self) -> str:
        """The Server header: no Python version."""
        return "chaperone"

    # -- routing -----------------------------------------------------------------------

    def do_GET(self) -> None:
        """Answer a GET."""
        self._handle()

    def _not_allowed(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _not_allowed  # noqa: N815

    def _handle(self) -> None:
        if not self._authorized():
            self._send(
                HTTPStatus.UNAUTHORIZED,
                _TEXT,
                b"a bearer token is required\n",
                {"WWW-Authenticate": 'Bearer realm="chaperone"'},
            )
            return
        path = self.path.partition("?")[0]
        if path not in ("/health", "/metrics"):
            self._send(HTTPStatus.NOT_FOUND, _TEXT, b"not found: try /health or /metrics\n")
            return
        if self.command != "GET":
            self._send(HTTPStatus.METHOD_NOT_ALLOWED, _TEXT, b"only GET\n", {"Allow": "GET"})
            return
        try:
            if path == "/health":
                self._health()
            else:
                self._metrics()
        except Exception as exc:
            reason = describe(exc)
            _log.error("cannot judge health", path=path, error=reason)
            if path == "/health":
                body = json.dumps({"healthy": False, "error": f"cannot judge health: {reason}"})
                self._send(HTTPStatus.SERVICE_UNAVAILABLE, _JSON, body.encode())
            else:
                self._send(HTTPStatus.SERVICE_UNAVAILABLE, _TEXT, b"cannot read the metrics\n")

    def _authorized(self) -> bool:
        token = self.server.token
        if not token:
            return True
        scheme, _, credentials = self.headers.get("Authorization", "").strip().partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            credentials.strip().encode("utf-8", "surrogateescape"), token.encode()
        )

    # -- answers -----------------------------------------------------------------------

    def _health(self) -> None:
        report = self.server.read_report()
        status = HTTPStatus.OK if report.healthy else HTTPStatus.SERVICE_UNAVAILABLE
        body = json.dumps(MASKER.mask_any(report.to_dict()), ensure_ascii=False)
        self._send(status, _JSON, body.encode())

    def _metrics(self) -> None:
        self._send(HTTPStatus.OK, CONTENT_TYPE, render_metrics(self.server.read_report))

    def _send(
        self,
        status: HTTPStatus,
        content_type: str,
        body: bytes,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    # -- logging -----------------------------------------------------------------------

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Log the request at debug level: method, path, status, client."""
        _log.debug(
            "request",
            method=self.command,
            path=MASKER.mask(self.path),
            status=int(code) if str(code).isdigit() else str(code),
            client=self.client_address[0],
        )

    def log_message(self, format: str, *args: Any) -> None:
        """Send http.server's own messages (a malformed request) to the debug log."""
        _log.debug("http server", message=MASKER.mask(format % args))
