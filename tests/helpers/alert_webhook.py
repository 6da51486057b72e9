"""A webhook on 127.0.0.1 for end-to-end tests of alerts: records each alert it answers
(type, key, firing or resolved, title), and can hang (hold every request, answering
nothing, until it is told to answer again or the client gives up).

Alerts are read from the fixture plugin's ``webhook`` channel's bodies,
``{"alert": {...}}``; any other service's body is kept as it came (:attr:`bodies`).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

import attrs

from helpers.connections import client_gone

__all__ = ["AlertWebhook", "Seen"]


@attrs.frozen
class Seen:
    """One alert the webhook answered."""

    type: str
    key: str
    status: str
    title: str
    fields: dict[str, str] = attrs.field(eq=False, factory=dict)

    @property
    def incident(self) -> tuple[str, str, str]:
        """(type, key, status)."""
        return (self.type, self.key, self.status)


class AlertWebhook:
    """Answers ``200`` to every alert, unless :attr:`hanging`."""

    def __init__(self, *, hanging: bool = False) -> None:
        self.hanging = hanging
        """While set, requests are held, unanswered, until it is cleared or the client
        closes the connection."""
        self._lock = threading.Condition()
        self._seen: list[Seen] = []
        self._arrivals: list[float] = []
        self._bodies: list[tuple[float, dict[str, Any]]] = []
        self._closing = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._closing.set()
        self._server.shutdown()
        self._thread.join(timeout=10)
        self._server.server_close()

    @property
    def url(self) -> str:
        """Where to post."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    @property
    def seen(self) -> list[Seen]:
        """Every alert answered, in order."""
        with self._lock:
            return list(self._seen)

    @property
    def arrivals(self) -> list[float]:
        """The monotonic time of each request's arrival (answered or not)."""
        with self._lock:
            return list(self._arrivals)

    @property
    def bodies(self) -> list[tuple[float, dict[str, Any]]]:
        """Each answered request's JSON body, with the monotonic time it was answered."""
        with self._lock:
            return list(self._bodies)

    def incidents(self) -> Counter[tuple[str, str, str]]:
        """How many times each (type, key, status) was answered."""
        return Counter(seen.incident for seen in self.seen)

    def wait_for(self, condition: Callable[[list[Seen]], bool], timeout: float) -> bool:
        """Wait until ``condition(seen)`` holds (at most ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not condition(list(self._seen)):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(min(remaining, 0.1))
            return True

    def _held(self, connection: socket.socket) -> bool:
        """Hold while hanging; True when the client gave up meanwhile."""
        return client_gone(connection, lambda: self.hanging and not self._closing.is_set())

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        webhook = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_POST(self) -> None:
                with webhook._lock:
                    webhook._arrivals.append(time.monotonic())
                length = int(self.headers.get("Content-Length") or 0)
                body: dict[str, Any] = json.loads(self.rfile.read(length) or b"{}")
                if webhook._held(self.connection):
                    return
                try:
                    self.send_response(200)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    return
                alert = body.get("alert", {})
                seen = Seen(
                    type=str(alert.get("type")),
                    key=str(alert.get("key")),
                    status=str(alert.get("status")),
                    title=str(alert.get("title")),
                    fields={str(name): str(value) for name, value in alert.get("fields", [])},
                )
                with webhook._lock:
                    webhook._seen.append(seen)
                    webhook._bodies.append((time.monotonic(), body))
                    webhook._lock.notify_all()

            def log_message(self, format: str, *args: object) -> None:
                """Keep test output quiet."""

        return Handler
