"""How many sends a runtime has in flight: at most :data:`PER_DESTINATION` to any one
destination, and :data:`TOTAL` in all.

The gates belong to the runtime, not to a batch: a destination that hangs holds its own
slots and never another's, whichever dispatch, tick or drain its entries came from. When
the total is the limit, destinations are served in turn (the one served least recently first), so a
destination with a thousand entries waiting does not go before one with a single entry.

Everything here runs on the runtime's delivery loop (one thread): no locks.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Final

__all__ = ["PER_DESTINATION", "TOTAL", "DeliveryGates"]

PER_DESTINATION: Final = 16
"""Sends in flight at once to one destination (a webhook, a routing key)."""
TOTAL: Final = 64
"""Sends in flight at once in one runtime, every destination together."""


class DeliveryGates:
    """Send slots, per destination and in total, granted in turn across destinations."""

    def __init__(self, per_destination: int = PER_DESTINATION, total: int = TOTAL) -> None:
        """``per_destination``: slots one destination may hold; ``total``: slots in all."""
        if per_destination < 1 or total < 1:
            raise ValueError("a gate needs at least one slot")
        self.per_destination = per_destination
        self.total = total
        self._busy: dict[str, int] = {}
        self._total_busy = 0
        self._waiting: dict[str, deque[asyncio.Future[None]]] = {}
        """Each destination's requests waiting, first come first."""
        self._served: dict[str, int] = {}
        """When each destination was last granted a slot (by count of grants)."""
        self._grants = 0

    @property
    def busy(self) -> int:
        """Slots held now, every destination together."""
        return self._total_busy

    def busy_for(self, destination_id: str) -> int:
        """Slots the destination holds now."""
        return self._busy.get(destination_id, 0)

    def waiting_for(self, destination_id: str) -> int:
        """Requests of the destination still waiting for a slot."""
        return sum(not future.done() for future in self._waiting.get(destination_id, ()))

    def request(self, destination_id: str) -> asyncio.Future[None]:
        """Ask for a slot: the future is done once it is granted (at once when one is
        free). Whoever gets it calls :meth:`release`; whoever gives up first calls
        :meth:`withdraw`.
        """
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(destination_id, deque()).append(future)
        self._grant()
        return future

    def release(self, destination_id: str) -> None:
        """Give back a granted slot, and grant the next waiting ones."""
        held = self._busy.get(destination_id, 0)
        if held <= 0:
            raise RuntimeError("released a send slot that was not held")
        if held == 1:
            del self._busy[destination_id]
        else:
            self._busy[destination_id] = held - 1
        self._total_busy -= 1
        self._grant()

    def withdraw(self, destination_id: str, future: asyncio.Future[None]) -> None:
        """Give up a request: its slot is released if it was granted meanwhile."""
        if future.done() and not future.cancelled():
            self.release(destination_id)
            return
        future.cancel()
        self._grant()  # drops the cancelled request

    def _grant(self) -> None:
        """Grant waiting requests while slots are free, each to the destination served
        least recently among those with room (one never served first).
        """
        while self._total_busy < self.total:
            ready: list[str] = []
            for destination_id, queue in list(self._waiting.items()):
                while queue and queue[0].done():  # withdrawn
                    queue.popleft()
                if not queue:
                    del self._waiting[destination_id]
                elif self._busy.get(destination_id, 0) < self.per_destination:
                    ready.append(destination_id)
            if not ready:
                return
            chosen = min(ready, key=lambda destination_id: self._served.get(destination_id, -1))
            self._waiting[chosen].popleft().set_result(None)
            self._busy[chosen] = self._busy.get(chosen, 0) + 1
            self._total_busy += 1
            self._grants += 1
            self._served[chosen] = self._grants
