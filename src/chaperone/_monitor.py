"""The monitor: ask every detector for events, and dispatch each.

``chaperone monitor`` runs it in a loop for jobs supervised by other processes;
``chaperone run`` runs it inline while its child works. Several monitors on one store
report each episode once (detectors claim their reports atomically).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

import structlog

from chaperone._events import Event
from chaperone._pipeline import DispatchReport
from chaperone._runtime import Runtime

__all__ = ["Monitor"]

_log = structlog.get_logger("chaperone.monitor")


class Monitor:
    """Runs the detectors of a runtime and dispatches what they find."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

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

    def tick(self) -> list[DispatchReport]:
        """Detect once and dispatch every event found; never raises."""
        try:
            events = self.detect()
        except Exception as exc:
            _log.error("detection failed", error=f"{type(exc).__name__}: {exc}")
            return []
        return [self.runtime.dispatch(event) for event in events]

    def run(self, interval: float, stop: threading.Event) -> int:
        """Tick every ``interval`` seconds until ``stop`` is set; return the tick count."""
        ticks = 0
        while not stop.is_set():
            self.tick()
            ticks += 1
            stop.wait(interval)
        return ticks


def _events(result: object) -> Iterable[Event]:
    if isinstance(result, Event):
        return [result]
    if isinstance(result, Iterable):
        return [item for item in result if isinstance(item, Event)]
    return []
