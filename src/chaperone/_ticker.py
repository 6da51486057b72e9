"""A monitor ticking on a thread of its own, for a process whose main thread must stay
free: ``chaperone run`` enforces its job's limits there, so neither a slow store nor a
hanging channel ever delays stopping the job.

Work for the store that the main thread finds (a measurement to judge, an event to
claim and report) is handed over with :meth:`Ticker.give` and done on the ticker's
thread before its next tick. :meth:`Ticker.finish` runs the last round (what was given,
then ticks) and waits for it at most a given time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import structlog

from chaperone._events import Event
from chaperone._monitor import Monitor

__all__ = ["Ticker"]

_log = structlog.get_logger("chaperone.monitor")

Work = Callable[[], Sequence[Event]]
"""Store work handed to the ticker: returns the events it found, to report."""


class Ticker:
    """Ticks ``monitor`` every ``interval`` seconds on a daemon thread."""

    def __init__(self, monitor: Monitor, interval: float) -> None:
        self.monitor = monitor
        self.interval = interval
        self._lock = threading.Lock()
        self._work: dict[str, Work] = {}
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._final_ticks = 1
        self._thread = threading.Thread(target=self._run, name="chaperone-ticker", daemon=True)

    def start(self) -> None:
        """Start ticking (the first tick at once)."""
        self._thread.start()

    def give(self, key: str, work: Work) -> None:
        """Have ``work`` done before the next tick, replacing work given under the same
        ``key`` not done yet (only the latest measurement matters), and tick soon.
        """
        with self._lock:
            self._work[key] = work
        self._wake.set()

    def finish(self, timeout: float, *, ticks: int = 1) -> bool:
        """Do the work given, tick ``ticks`` more times, and stop; wait at most
        ``timeout`` seconds. False when the last round had not ended by then (it goes on
        in the background, on a daemon thread).
        """
        self._final_ticks = ticks
        self._stopping.set()
        self._wake.set()
        if not self._thread.is_alive() and self._thread.ident is None:
            self._run()  # never started: do the last round here
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while True:
            stopping = self._stopping.is_set()
            rounds = self._final_ticks if stopping else 1
            for _ in range(rounds):
                self._round()
            if stopping:
                return
            self._wake.wait(self.interval)
            self._wake.clear()

    def _round(self) -> None:
        with self._lock:
            work, self._work = list(self._work.values()), {}
        found: list[Event] = []
        for item in work:
            try:
                found.extend(item())
            except Exception:
                _log.exception("work handed to the monitor failed")
        started = time.monotonic()
        self.monitor.tick(extra=found, wait=0)
        _log.debug("tick", seconds=round(time.monotonic() - started, 3))
