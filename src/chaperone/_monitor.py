"""The monitor: ask every detector for events, and dispatch each.

``chaperone monitor`` runs it in a loop for jobs supervised by other processes;
``chaperone run`` runs it inline while its child works. Several monitors on one store
report each episode once (detectors claim their reports atomically).

Each tick also drains the outbox: retries put back for later, and the entries a killed
process left once their leases ran out. Several monitors on one store deliver each
entry once (a lease per entry).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

import structlog

from chaperone._events import Event
from chaperone._pipeline import DispatchReport
from chaperone._runtime import Runtime

__all__ = ["ALIVE_KEY", "ALIVE_TTL", "Monitor", "monitor_alive"]

_log = structlog.get_logger("chaperone.monitor")

ALIVE_KEY = "monitor:alive"
"""Set by every tick, so job processes know a monitor will flush what they hold back."""
ALIVE_TTL = 120.0
"""Seconds a tick vouches for: a monitor silent longer than this counts as gone."""


def monitor_alive(runtime: Runtime) -> bool:
    """Whether a monitor that keeps ticking vouched for this store recently (within
    :data:`ALIVE_TTL` seconds, or three of its intervals when longer).

    Grouping holds alerts back only while this is true: with no monitor to flush them,
    held alerts would wait for one, so they go out one by one instead.
    """
    try:
        return runtime.store.get(ALIVE_KEY) is not None
    except Exception:
        return False


class Monitor:
    """Runs the detectors of a runtime and dispatches what they find."""

    def __init__(self, runtime: Runtime, *, vouch_for: float | None = ALIVE_TTL) -> None:
        """``vouch_for``: seconds each tick promises another will follow (marking the
        store so grouping may hold alerts for this monitor to flush); None for a monitor
        that will stop soon, such as the one inside ``chaperone run``.
        """
        self.runtime = runtime
        self.vouch_for = vouch_for

    def detect(self) -> list[Event]:
        """Ask every ``chaperone_detect`` implementation for events (one that raises is
        logged and skipped).
        """
        now = self.runtime.clock.now()
        found: list[Event] = []
        for result in self.runtime.plugins.call_each(
            "chaperone_detect", runtime=self.runtime, now=now
        ):
            found.extend(_events(result))
        return found

    def tick(self, *, wait: float | None = None) -> list[DispatchReport]:
        """Detect once, dispatch every event found as one batch (all written to the
        outbox, then all delivered at once), and deliver the outbox's due entries, waiting
        for these deliveries at most ``wait`` seconds (None: until all are done; 0: not at
        all: they go on while the next tick runs); never raises.
        """
        try:
            if self.vouch_for is not None:
                now = self.runtime.clock.now().isoformat()
                self.runtime.store.set(ALIVE_KEY, now, ttl=self.vouch_for)
            events = self.detect()
        except Exception as exc:
            _log.error("detection failed", error=f"{type(exc).__name__}: {exc}")
            events = []
        return self.runtime.dispatch_all(events, wait=wait)

    def run(self, interval: float, stop: threading.Event, *, wait: float | None = None) -> int:
        """Tick every ``interval`` seconds until ``stop`` is set, each tick waiting for its
        deliveries at most ``wait`` seconds; return the tick count.
        """
        ticks = 0
        while not stop.is_set():
            self.tick(wait=wait)
            ticks += 1
            stop.wait(interval)
        return ticks


def _events(result: object) -> Iterable[Event]:
    if isinstance(result, Event):
        return [result]
    if isinstance(result, Iterable):
        return [item for item in result if isinstance(item, Event)]
    return []
