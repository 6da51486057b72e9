"""How fast one destination may be sent to, agreed by every process sharing the store.

Two things slow a destination down, each kept under its destination id (a channel name
and a hash of its settings, never the settings themselves):

``pace:hold:<destination id>``
    A hold: the Unix time before which nothing is sent there, because the service said
    so (``Retry-After``, Discord's ``retry_after``, an emptied rate-limit bucket).
``pace:slot:<destination id>:<slot>``
    The sends counted in one slot of the channel's documented rate (Slack: one per
    second per webhook; PagerDuty: 120 per minute per routing key). A send over the
    count waits for the next slot. Fixed slots allow a short burst at a slot's edge (two
    sends close together), which the services tolerate.

Clocks: the store judges expiry by each caller's clock, so processes on several machines
need synchronised clocks (NTP) for a hold to be honoured to the second.
"""

from __future__ import annotations

import math
from typing import Final

from chaperone._clock import Clock
from chaperone.store import Store

__all__ = ["HOLD_PREFIX", "SLOT_PREFIX", "held_until", "hold", "take_slot"]

HOLD_PREFIX: Final = "pace:hold:"
SLOT_PREFIX: Final = "pace:slot:"


def held_until(store: Store, destination_id: str) -> float:
    """The clock time before which nothing may go to the destination (0 when free)."""
    value = store.get(HOLD_PREFIX + destination_id)
    if value is None:
        return 0.0
    try:
        until = float(value)
    except ValueError:
        return 0.0
    return until if math.isfinite(until) else 0.0


def hold(store: Store, clock: Clock, destination_id: str, seconds: float) -> float:
    """Hold the destination for ``seconds`` from now, unless it is held longer already;
    return the end of the hold in force.
    """
    now = clock.timestamp()
    until = now + max(0.0, seconds)
    current = held_until(store, destination_id)
    if current >= until:
        return current
    if seconds > 0:
        store.set(HOLD_PREFIX + destination_id, repr(until), ttl=seconds)
    return until


def take_slot(
    store: Store, clock: Clock, destination_id: str, pace: tuple[int, float] | None
) -> float:
    """Count a send to the destination in the current slot of its ``pace`` (requests,
    per seconds); return 0 when it may go now, else the seconds until the next slot.
    """
    if pace is None:
        return 0.0
    requests, per = pace
    if requests <= 0 or per <= 0:
        return 0.0
    now = clock.timestamp()
    slot = math.floor(now / per)
    count = store.incr(f"{SLOT_PREFIX}{destination_id}:{slot}", 1, ttl=2 * per)
    if count <= requests:
        return 0.0
    return max((slot + 1) * per - now, 0.001)
