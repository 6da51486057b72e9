"""What a loopback test server holding a request needs to know about its client."""

from __future__ import annotations

import select
import socket
from collections.abc import Callable

__all__ = ["client_gone"]


def client_gone(connection: socket.socket, holding: Callable[[], bool]) -> bool:
    """Hold the request while ``holding()`` says so; return True as soon as the client
    closed the connection (gave up at its timeout, or was killed), False once the hold
    ended with the client still there.
    """
    while holding():
        readable, _, _ = select.select([connection], [], [], 0.02)
        if readable:
            try:
                if connection.recv(1, socket.MSG_PEEK) == b"":
                    return True
            except OSError:
                return True
    return False
