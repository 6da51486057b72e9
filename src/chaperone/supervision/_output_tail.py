"""The end of a command's output, kept in a bounded buffer: what ``chaperone run`` shows
of a failed run, however much the command printed.

The buffer keeps the last :data:`TAIL_BYTES` bytes written to it, from any number of
threads, in the order they arrived. It is far larger than what an alert or a job record
shows of it (at most 2,000 characters, a quarter of what the buffer holds even when
every character takes four bytes), so a secret cut in two where the buffer starts lies
far from the part that is shown, and :meth:`OutputTail.shown_text` drops that first,
partial line anyway.
"""

from __future__ import annotations

import re
import threading
from typing import Final

__all__ = ["TAIL_BYTES", "OutputTail"]

TAIL_BYTES: Final = 16 * 1024
"""Bytes of output kept: the end of it."""

_LINE_BREAK: Final = re.compile(r"[\r\n]")


class OutputTail:
    """The last ``size`` bytes written to it, in arrival order; safe to write from
    several threads.
    """

    def __init__(self, size: int = TAIL_BYTES) -> None:
        if size < 1:
            raise ValueError(f"size must be 1 or more, got {size}")
        self._size = size
        self._buffer = bytearray()
        self._dropped = False
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        """How many bytes it keeps at most."""
        return self._size

    @property
    def overflowed(self) -> bool:
        """Whether more was written than it keeps (its start was dropped)."""
        return self._dropped

    def write(self, data: bytes) -> None:
        """Add ``data`` at the end, dropping what falls out of the start."""
        if not data:
            return
        with self._lock:
            if len(data) >= self._size:
                self._dropped = self._dropped or bool(self._buffer) or len(data) > self._size
                self._buffer[:] = data[-self._size :]
                return
            self._buffer += data
            excess = len(self._buffer) - self._size
            if excess > 0:
                del self._buffer[:excess]
                self._dropped = True

    def data(self) -> bytes:
        """The bytes kept, oldest first."""
        with self._lock:
            return bytes(self._buffer)

    def text(self) -> str:
        """The bytes kept, decoded as UTF-8 (U+FFFD for what is not, such as a character
        cut where the buffer starts).
        """
        return self.data().decode("utf-8", "replace")

    def shown_text(self) -> str:
        """:meth:`text`, without its first line when the start was dropped (that line is
        cut: a secret in it could not be recognised to be masked); the whole when it is
        one line.
        """
        text = self.text()
        if not self.overflowed:
            return text
        first_break = _LINE_BREAK.search(text)
        return text if first_break is None else text[first_break.end() :]
