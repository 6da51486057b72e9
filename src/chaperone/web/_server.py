"""Serving the app: a socket bound up front (so the real port is known and a taken one
is reported before anything starts), uvicorn with :mod:`the hardened protocol
<chaperone.web._protocol>`, its logs routed into ours at debug level without tracebacks,
and a graceful stop on SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from typing import Final

import structlog
import uvicorn
from starlette.types import ASGIApp

from chaperone._secrets import MASKER, describe
from chaperone.config import ServeSettings
from chaperone.web._protocol import hardened_protocol

__all__ = ["GRACEFUL_STOP", "WebServer", "address_of", "bind", "route_server_logs"]

GRACEFUL_STOP: Final = 5
"""Seconds requests in progress are given to finish once asked to stop."""
_BACKLOG: Final = 2048
_SERVER_LOGGERS: Final = ("uvicorn", "uvicorn.error", "uvicorn.asgi", "asyncio")
_log = structlog.get_logger("chaperone.serve")


def address_of(host: str, port: int) -> str:
    """The IP address ``host`` stands for (OSError when it names none)."""
    return str(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][4][0])


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``:``port`` (0: any free port). OSError when it
    cannot be had.
    """
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    return socket.create_server((host, port), family=family, backlog=_BACKLOG)


class _ToStructlog(logging.Handler):
    """The server's log records as our debug lines: the message masked, an exception as
    one line naming it, never a traceback.
    """

    def emit(self, record: logging.LogRecord) -> None:
        """Log ``record`` at debug level."""
        try:
            message = MASKER.mask(record.getMessage())
        except Exception:
            message = str(record.msg)
        fields = {"logger": record.name, "level_was": record.levelname.lower()}
        if record.exc_info and record.exc_info[1] is not None:
            fields["error"] = describe(record.exc_info[1])
        _log.debug("http server", message=message, **fields)


@contextmanager
def route_server_logs() -> Iterator[None]:
    """While inside, uvicorn's and asyncio's log records go to our log at debug level
    (the access log is off: :class:`~chaperone.web._guard.RequestGuard` logs requests).
    """
    handler = _ToStructlog()
    saved = []
    for name in (*_SERVER_LOGGERS, "uvicorn.access"):
        logger = logging.getLogger(name)
        saved.append((logger, logger.handlers[:], logger.propagate, logger.level))
        logger.handlers = [] if name == "uvicorn.access" else [handler]
        logger.propagate = False
        logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        for logger, handlers, propagate, level in saved:
            logger.handlers, logger.propagate = handlers, propagate
            logger.setLevel(level)


class _Server(uvicorn.Server):
    """uvicorn's server, but a signal that stopped it is not raised again afterwards
    (the command ends normally, printing "stopped").
    """

    @contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """Stop gracefully on SIGTERM and SIGINT while serving (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {
            sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


class WebServer:
    """``app`` served on ``sock`` with the limits of ``serve``; :meth:`run` blocks until
    SIGTERM, Ctrl-C or :meth:`stop`.
    """

    def __init__(self, app: ASGIApp, sock: socket.socket, serve: ServeSettings) -> None:
        self.socket = sock
        protocol = hardened_protocol(
            request_timeout=serve.request_timeout, idle_timeout=serve.idle_timeout
        )
        config = uvicorn.Config(
            app,
            http=protocol,
            ws="none",
            lifespan="off",
            log_config=None,
            access_log=False,
            proxy_headers=False,
            server_header=False,
            headers=[("server", "chaperone")],
            limit_concurrency=serve.max_connections,
            backlog=_BACKLOG,
            timeout_graceful_shutdown=GRACEFUL_STOP,
            h11_max_incomplete_event_size=serve.max_request_head,
        )
        self._server = _Server(config)

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` with the port actually bound."""
        host, port = self.socket.getsockname()[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    @property
    def started(self) -> bool:
        """Whether the server accepts connections."""
        return bool(self._server.started)

    def run(self) -> None:
        """Serve until asked to stop, then finish the requests in progress (at most
        :data:`GRACEFUL_STOP` seconds) and close the socket.
        """
        try:
            with route_server_logs():
                self._server.run(sockets=[self.socket])
        finally:
            self.socket.close()

    def stop(self) -> None:
        """Ask :meth:`run` to return (from any thread)."""
        self._server.should_exit = True
