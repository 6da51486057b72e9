"""Calls that may hang (a store locked by another process, a Redis that never answers),
run in a worker thread and waited for a bounded time, one at a time per key.

A caller that gives up leaves its worker running: the worker ends when the call returns
(a SQLite busy timeout, a Redis socket timeout). Until then, the next caller with the same
key waits for that worker to end (within its own time) before it starts another, so a
store that hangs for a minute holds one worker thread, never one per request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Final, TypeVar

__all__ = ["NoAnswerError", "call_bounded"]

_T = TypeVar("_T")

_idle: Final = threading.Condition()
_started: dict[Hashable, float] = {}
"""Key -> monotonic time its worker started, while one runs (guarded by ``_idle``)."""


class NoAnswerError(TimeoutError):
    """The call did not return in time; the message says how long it has been waiting."""


def call_bounded(key: Hashable, call: Callable[[], _T], timeout: float) -> _T:
    """Return what ``call()`` returns (or raise what it raises), run in a daemon thread,
    waiting at most ``timeout`` seconds in all.

    When a worker with the same ``key`` is still running, wait for it to end first; raise
    :class:`NoAnswerError` when that or this call's own worker takes past ``timeout``.
    """
    deadline = time.monotonic() + timeout
    with _idle:
        while key in _started:
            left = deadline - time.monotonic()
            if left <= 0:
                waited = time.monotonic() - _started[key]
                raise NoAnswerError(
                    f"no answer within {timeout:g} s (an earlier call has been waiting "
                    f"for {waited:.0f} s)"
                )
            _idle.wait(left)
        _started[key] = time.monotonic()
    result: Future[_T] = Future()

    def work() -> None:
        try:
            result.set_result(call())
        except BaseException as exc:  # handed to the caller, who may be gone
            result.set_exception(exc)
        finally:
            with _idle:
                del _started[key]
                _idle.notify_all()

    threading.Thread(target=work, name="chaperone-bounded-call", daemon=True).start()
    try:
        return result.result(timeout=max(0.0, deadline - time.monotonic()))
    except TimeoutError:
        if result.done():
            raise  # the call's own TimeoutError (a socket's)
        raise NoAnswerError(f"no answer within {timeout:g} s") from None
