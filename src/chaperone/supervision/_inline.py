"""A job's own process watching its jobs while the store is degraded.

A stuck job cannot report itself, so detection runs in ``chaperone monitor``: but a
monitor sees only the store, and while this process cannot reach it the monitor does
not see this process's jobs either. So while the store is degraded (and this process
has jobs running), the supervisor's writer thread ticks a monitor of its own here, over
what the process works from meanwhile (memory: its own jobs, written there again when
the store went degraded). Its alerts go straight to the configured channels, and a
``chaperone_degraded`` alert for the store goes with them. The Chaperone behind it (the
channels, the HTTP client) is built the first time it is needed, not before.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Final

import structlog

from chaperone._clock import Clock
from chaperone.store import ResilientStore, StoreState

if TYPE_CHECKING:
    from chaperone._monitor import Monitor
    from chaperone.config import Settings
    from chaperone.supervision._supervisor import Supervisor

__all__ = ["TICK_INTERVAL", "InlineWatch"]

TICK_INTERVAL: Final = 1.0
"""Seconds between two ticks of the inline monitor."""

_log = structlog.get_logger("chaperone.supervision")


class InlineWatch:
    """Detection and delivery in the job's process while ``store`` is degraded."""

    def __init__(
        self, settings: Settings, store: ResilientStore, clock: Clock, supervisor: Supervisor
    ) -> None:
        self._settings = settings
        self._store = store
        self._clock = clock
        self._supervisor = supervisor
        self._monitor: Monitor | None = None
        self._broken = False
        self._ticked_at = float("-inf")

    def cycle(self) -> None:
        """Try the store again when due; tick when it is degraded, jobs run, and a tick is
        due (the supervisor's writer calls this every cycle).
        """
        if self._store.state is StoreState.DEGRADED:
            self._store.maybe_recover()
        if self._store.state is not StoreState.DEGRADED or self._broken:
            return
        if not self._supervisor.active:
            return
        now = time.monotonic()
        if now - self._ticked_at < TICK_INTERVAL:
            return
        self._ticked_at = now
        monitor = self._monitor or self._build()
        if monitor is not None:
            monitor.tick(wait=0)

    def _build(self) -> Monitor | None:
        from chaperone._chaperone import Chaperone
        from chaperone._exceptions import ConfigError
        from chaperone._monitor import Monitor

        try:
            chaperone = Chaperone(self._settings, clock=self._clock, store=self._store)
        except ConfigError as exc:
            self._broken = True
            _log.error(
                "cannot watch the jobs from here: the configuration is wrong", error=str(exc)
            )
            return None
        _log.warning("the store is degraded: this process watches its own jobs meanwhile")
        self._monitor = Monitor(chaperone, vouch_for=None)
        return self._monitor
