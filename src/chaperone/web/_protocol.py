"""uvicorn's h11 protocol, hardened against slow and malformed clients.

- A connection that has not sent a complete request head within the request timeout is
  closed (with 408 when it sent part of one); an idle keep-alive connection after the
  idle timeout.
- A request line longer than the head limit gets 414, a header block past it 431, any
  other malformed request 400 (uvicorn answers every parse error with 400, and parses a
  head that arrived whole whatever its size).
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar, Final

import h11
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import STATUS_PHRASES, H11Protocol
from uvicorn.server import ServerState

__all__ = ["HardenedH11Protocol", "hardened_protocol"]

_TIMED_OUT: Final = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 16\r\nconnection: close\r\n\r\nrequest timeout\n"
)


class _Connection(h11.Connection):
    """An h11 server connection that keeps the last protocol error, and refuses a
    request whose line or headers exceed the head limit even when it arrived whole.
    """

    def __init__(self, max_head: int) -> None:
        super().__init__(h11.SERVER, max_incomplete_event_size=max_head)
        self.max_head = max_head
        self.last_error: h11.RemoteProtocolError | None = None

    def next_event(self) -> Any:
        """The next event, as h11 parses it, within the head limit."""
        try:
            event = self._next_within_limit()
        except h11.RemoteProtocolError as exc:
            self.last_error = exc
            raise
        return event

    def _next_within_limit(self) -> Any:
        try:
            event = super().next_event()
        except h11.RemoteProtocolError as exc:
            if exc.error_status_hint == 431 and b"\n" not in self.trailing_data[0]:
                raise h11.RemoteProtocolError(
                    "request line too long", error_status_hint=414
                ) from None
            raise
        if isinstance(event, h11.Request):
            if len(event.target) + len(event.method) + 10 > self.max_head:
                raise h11.RemoteProtocolError("request line too long", error_status_hint=414)
            size = sum(len(name) + len(value) + 4 for name, value in event.headers)
            if size > self.max_head:
                raise h11.RemoteProtocolError("headers too large", error_status_hint=431)
        return event


class HardenedH11Protocol(H11Protocol):
    """H11Protocol with a request-head timeout and 400/414/431 answers."""

    request_timeout: ClassVar[float] = 10.0
    idle_timeout: ClassVar[float] = 5.0

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.conn: _Connection = _Connection(config.h11_max_incomplete_event_size or 16 * 1024)
        self.timeout_keep_alive = self.idle_timeout  # type: ignore[assignment]  # a float works
        self._head_timer: asyncio.TimerHandle | None = None
        self.access_log = False  # RequestGuard logs each request, its secrets masked

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the clock for the first request head."""
        super().connection_made(transport)
        self._arm_head_timer()

    def data_received(self, data: bytes) -> None:
        """Feed ``data`` to h11; the head clock runs while a request head is incomplete."""
        if self.conn.their_state is h11.IDLE:
            self._arm_head_timer()
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._disarm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the head clock."""
        self._disarm_head_timer()
        super().connection_lost(exc)

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.request_timeout, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if self.conn.trailing_data[0] and self.conn.our_state is h11.IDLE:
            self.transport.write(_TIMED_OUT)
        self.transport.close()

    def send_400_response(self, msg: str) -> None:
        """Answer a malformed request: 414 for an overlong request line, 431 for
        headers past the limit, else 400; then close.
        """
        error = self.conn.last_error
        status = error.error_status_hint if error is not None else 400
        body = f"{STATUS_PHRASES[status].decode()}\n".encode()
        head = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        try:
            self.transport.write(
                self.conn.send(
                    h11.Response(status_code=status, headers=head, reason=STATUS_PHRASES[status])
                )
                or b""
            )
            self.transport.write(self.conn.send(h11.Data(data=body)) or b"")
            self.transport.write(self.conn.send(h11.EndOfMessage()) or b"")
        except h11.LocalProtocolError:
            pass  # h11 cannot answer in this state: closing says enough
        self.transport.close()


def hardened_protocol(*, request_timeout: float, idle_timeout: float) -> type[HardenedH11Protocol]:
    """A :class:`HardenedH11Protocol` class with these timeouts (seconds), for uvicorn's
    ``http=``.
    """
    return type(
        "ChaperoneH11Protocol",
        (HardenedH11Protocol,),
        {"request_timeout": request_timeout, "idle_timeout": idle_timeout},
    )
