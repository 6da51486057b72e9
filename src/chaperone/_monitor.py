"""The monitor: ask every detector for events, and dispatch each.

``chaperone monitor`` runs it in a loop for jobs supervised by other processes;
``chaperone run`` runs it inline while its child works. Several monitors on one store
report each episode once (detectors claim their reports atomically).

Each tick also drains the outbox: retries put back for later, and the entries a killed
process left once their leases ran out. Several monitors on one store deliver each
entry once (a lease per entry).

A monitor that vouches for the store (``chaperone monitor``) leaves a beat there on every
tick (:class:`~chaperone.metrics._liveness.MonitorBeat`), with the tick's detection error
if any, so ``chaperone health`` knows a monitor runs and detects cleanly. A detector that
raises makes ``detection`` a degraded part of Chaperone until a tick detects cleanly; a
store that failed is tried again from the tick (when it is due).
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

import structlog

from chaperone._events import Event
from chaperone._secrets import describe
from chaperone._standing import stand
from chaperone.metrics._liveness import ALIVE_KEY, ALIVE_TTL, MonitorBeat

if TYPE_CHECKING:
    from chaperone._chaperone import Chaperone
    from chaperone._dispatch import DispatchReport

__all__ = ["Monitor"]

_log = structlog.get_logger("chaperone.monitor")


class Monitor:
    """Runs the detectors of a running Chaperone and dispatches what they find."""

    def __init__(
        self,
        chaperone: Chaperone,
        *,
        vouch_for: float | None = ALIVE_TTL,
        interval: float = 1.0,
    ) -> None:
        """``vouch_for``: seconds each tick promises another will follow (marking the
        store so grouping may hold alerts for this monitor to flush, and leaving a beat
        for health); None for a monitor that will stop soon, such as the one inside
        ``chaperone run``. ``interval``: seconds between its ticks, written in its beat.
        """
        self.chaperone = chaperone
        self.vouch_for = vouch_for
        self.interval = interval
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        """This monitor's id in its beats."""
        self.detection_error: str | None = None
        """The latest tick's detection error (secret-free), None when it was clean."""
        if vouch_for is not None:
            stand(chaperone.runtime)

    def detect(self) -> list[Event]:
        """Ask every ``chaperone_detect`` implementation for events. One that raises is
        logged and skipped, and its error kept in :attr:`detection_error`.
        """
        detection = self.chaperone.hooks.detect(self.chaperone.clock.now())
        errors = [f"{failure.plugin}: {failure.error}" for failure in detection.failures]
        self.detection_error = "; ".join(errors) or None
        return list(detection.events)

    def tick(
        self, extra: Sequence[Event] = (), *, wait: float | None = None
    ) -> list[DispatchReport]:
        """Detect once, dispatch every event found (and ``extra``, events the caller
        found itself) as one batch (all written to the outbox, then all delivered at
        once), and deliver the outbox's due entries, waiting for these deliveries at most
        ``wait`` seconds (None: until all are done; 0: not at all: they go on while the
        next tick runs); never raises.
        """
        self._recover_store()
        try:
            if self.vouch_for is not None:
                now = self.chaperone.clock.now().isoformat()
                self.chaperone.store.set(ALIVE_KEY, now, ttl=self.vouch_for)
            events = [] if self._settling() else self.detect()
        except Exception as exc:
            self.detection_error = describe(exc)
            _log.error("detection failed", error=self.detection_error)
            events = []
        self._report_detection()
        return self.chaperone.dispatch_all([*extra, *events], wait=wait)

    def _recover_store(self) -> None:
        """Try a store that failed again, when a try is due."""
        recover = getattr(self.chaperone.store, "maybe_recover", None)
        if recover is None:
            return
        try:
            recover()
        except Exception as exc:
            _log.error("could not try the store again", error=describe(exc))

    def _settling(self) -> bool:
        """Whether the store has just come back from being degraded: detection waits two
        probe intervals, so that the processes that watched their own jobs from memory
        meanwhile (and reported their trouble) carry their claims to it first; a job is
        not reported again from the store's older view of it.
        """
        settling = getattr(self.chaperone.store, "settling", None)
        if settling is None or not settling(self.chaperone.clock.timestamp()):
            return False
        _log.info("the store just came back: detection waits for others to catch up")
        return True

    def _report_detection(self) -> None:
        """Tell health and the self-watch how detection went."""
        watch = self.chaperone.self_watch
        if self.detection_error is None:
            watch.working("detection")
        else:
            watch.failing("detection", self.detection_error)
        watch.refresh()
        if self.vouch_for is None:
            return
        beat = MonitorBeat(
            monitor=self.id,
            host=socket.gethostname(),
            pid=os.getpid(),
            interval=self.interval,
            ticked_at=self.chaperone.clock.timestamp(),
            error=self.detection_error,
        )
        try:
            beat.write(self.chaperone.store)
        except Exception as exc:
            _log.warning("could not record the monitor's beat", error=describe(exc))

    def run(self, interval: float, stop: threading.Event, *, wait: float | None = None) -> int:
        """Tick every ``interval`` seconds until ``stop`` is set, each tick waiting for its
        deliveries at most ``wait`` seconds; return the tick count.
        """
        self.interval = interval
        ticks = 0
        while not stop.is_set():
            self.tick(wait=wait)
            ticks += 1
            stop.wait(interval)
        return ticks
