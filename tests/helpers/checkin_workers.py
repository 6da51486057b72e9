"""A process sending check-ins to a shared store (tests/supervision/test_checkins.py):
spawned several times at once, each opens the store by URL on its own system clock."""

from __future__ import annotations

from chaperone._clock import SystemClock
from chaperone.store import open_store
from chaperone.supervision.checkins import CheckInKind, check_in

__all__ = ["run_checkins"]


def run_checkins(url: str, worker: int, runs: int) -> list[str]:
    """Start, heartbeat and end ``runs`` runs of the job "shared" (run ids
    ``w<worker>-<n>``); return the supervision ids of the runs ended.
    """
    clock = SystemClock()
    store = open_store(url, clock)
    try:
        ended = []
        for number in range(runs):
            run = f"w{worker}-{number}"
            check_in(store, clock, "shared", CheckInKind.START, run=run)
            check_in(store, clock, "shared", CheckInKind.HEARTBEAT, run=run)
            kind = CheckInKind.FAIL if number % 2 else CheckInKind.SUCCESS
            ended.append(check_in(store, clock, "shared", kind, run=run).supervision_id)
        return ended
    finally:
        store.close()
