"""The output of the command ``chaperone run`` starts, passed through and its tail kept.

The command writes its standard output and error into two pipes. A thread per pipe
reads whatever arrives (``os.read``, no line buffering) and writes it at once, byte for
byte, to ``chaperone run``'s own standard output or error, and into one
:class:`~chaperone.supervision._output_tail.OutputTail` shared by both, so the tail
holds the end of the combined output in the order it arrived. Memory stays the size of
the tail and of one read, however much the command prints.

Once the command has ended, :meth:`OutputCapture.finish` waits for the readers: each
stops at the end of its pipe, or as soon as its pipe stays quiet for
:data:`QUIET_AFTER_EXIT` seconds (a process the command left behind still holds it
open), and the wait gives up after ``limit`` seconds in all (such a process keeps
writing). A reader that stops closes its end of the pipe, so what writes into it after
that gets a broken pipe; a reader whose own standard output is a broken pipe
(``chaperone run ... | head``) closes its end at once, so the command gets the broken
pipe it would have got without ``chaperone run``.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
from typing import Final

from chaperone.supervision._output_tail import OutputTail

__all__ = ["FINISH_LIMIT", "QUIET_AFTER_EXIT", "OutputCapture"]

QUIET_AFTER_EXIT: Final = 0.2
"""Seconds a pipe may stay quiet after the command ended before its reader stops."""
FINISH_LIMIT: Final = 2.0
"""Seconds :meth:`OutputCapture.finish` waits for the readers by default."""
_CHUNK: Final = 64 * 1024
"""Bytes read at a time (a pipe's whole buffer on Linux)."""
_STOP_JOIN: Final = 0.2
"""Seconds given to a reader told to stop, after the limit."""


class OutputCapture:
    """Two pipes for a command's standard output and error, and their readers.

    Give :attr:`child_stdout` and :attr:`child_stderr` to the command, call
    :meth:`start` once it started (or :meth:`close` when it did not), and
    :meth:`finish` once it ended.
    """

    def __init__(self, tail: OutputTail, *, stdout: int = 1, stderr: int = 2) -> None:
        self.tail = tail
        """Where the end of the combined output is kept."""
        self._targets = (stdout, stderr)
        out_read, self.child_stdout = os.pipe()
        err_read, self.child_stderr = os.pipe()
        self._reads = (out_read, err_read)
        self._wake_read, self._wake_write = os.pipe()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._open = {out_read, self.child_stdout, err_read, self.child_stderr}
        self._open |= {self._wake_read, self._wake_write}
        self._lock = threading.Lock()

    def start(self) -> None:
        """Close the command's ends of the pipes (it has its own copies) and start the
        readers.
        """
        self._close(self.child_stdout, self.child_stderr)
        for name, read, target in zip(
            ("stdout", "stderr"), self._reads, self._targets, strict=True
        ):
            thread = threading.Thread(
                target=self._pump, args=(read, target), name=f"chaperone-run-{name}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def finish(self, limit: float = FINISH_LIMIT) -> bool:
        """After the command ended: wait for the readers to stop, ``limit`` seconds at
        most; whether they all did (else they are told to stop, and left behind when
        stuck writing to a standard output nobody reads).
        """
        os.write(self._wake_write, b".")
        deadline = time.monotonic() + limit
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._stop.set()
        for thread in self._threads:
            thread.join(_STOP_JOIN)
        done = not any(thread.is_alive() for thread in self._threads)
        if done:
            self._close(self._wake_read, self._wake_write)
        return done

    def close(self) -> None:
        """Close every pipe not closed yet: for a command that never started."""
        self._close(*self._reads, self.child_stdout, self.child_stderr)
        self._close(self._wake_read, self._wake_write)

    def _close(self, *fds: int) -> None:
        """Close each of ``fds`` that is still open, once (its number may be reused)."""
        with self._lock:
            closing = self._open.intersection(fds)
            self._open -= closing
        for fd in closing:
            with contextlib.suppress(OSError):
                os.close(fd)

    def _pump(self, read: int, target: int) -> None:
        """Copy ``read`` to ``target`` and into the tail until the pipe ends, or stays
        quiet once the command ended, or the reader is told to stop.
        """
        poller = select.poll()
        poller.register(read, select.POLLIN)
        poller.register(self._wake_read, select.POLLIN)
        quiet: int | None = None  # milliseconds, once the command ended
        forwarding = True
        try:
            while not self._stop.is_set():
                ready = dict(poller.poll(quiet))
                if not ready:
                    return  # the command ended, and nothing more came
                if self._wake_read in ready:
                    poller.unregister(self._wake_read)
                    quiet = int(QUIET_AFTER_EXIT * 1000)
                if read not in ready:
                    continue
                chunk = os.read(read, _CHUNK)
                if not chunk:
                    return  # every writer closed the pipe
                self.tail.write(chunk)
                if forwarding:
                    try:
                        _write_all(target, chunk)
                    except BrokenPipeError:
                        return  # nobody reads ours: the command gets its broken pipe
                    except OSError:
                        forwarding = False  # ours is closed: keep the tail, drop the rest
        finally:
            self._close(read)


def _write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd``, however many writes it takes."""
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except InterruptedError:
            continue
        except BlockingIOError:
            select.select([], [fd], [])
            continue
        view = view[written:]
