"""The deliveries a runtime has in flight: one task per outbox entry on the runtime's
delivery loop, each with a record of how far it got.

A dispatch starts its deliveries here and waits for them only as long as its caller
asked; the tasks go on without it, and call the delivered / delivery-failed hooks when
they end. Closing the runtime waits for them at most the exit grace, then cancels the
rest (:meth:`InFlight.settle`).

Everything here runs on the delivery loop, except :meth:`InFlight.__len__`, which any
thread may read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Coroutine
from typing import TYPE_CHECKING, Any, Final

import attrs

from chaperone._outbox import Claim
from chaperone._verdicts import Outcome

if TYPE_CHECKING:
    from chaperone._delivery import DeliveryResult

__all__ = ["CANCEL_WAIT", "Delivery", "InFlight"]

CANCEL_WAIT: Final = 1.0
"""Seconds :meth:`InFlight.settle` gives cancelled deliveries to put their entries back."""

Results = list["DeliveryResult"]


@attrs.define
class Delivery:
    """One entry's delivery in flight, and how far it got."""

    claim: Claim
    """The entry being delivered: the fallback's, once a failed one was handed on."""
    attempts: int
    """Sends made so far, by every process that tried this entry."""
    last: Outcome | None
    """The last attempt's outcome."""

    @classmethod
    def of(cls, claim: Claim) -> Delivery:
        """The delivery of ``claim``, from where its entry stands."""
        return cls(claim, claim.entry.attempts, claim.entry.last)

    def hand_on(self, claim: Claim) -> None:
        """Go on with ``claim`` (a fallback's entry) from where its entry stands."""
        self.claim = claim
        self.attempts = claim.entry.attempts
        self.last = claim.entry.last


class InFlight:
    """The runtime's deliveries in flight, by task."""

    def __init__(self) -> None:
        self._running: dict[asyncio.Task[Results], Delivery] = {}

    def __len__(self) -> int:
        """Deliveries in flight now."""
        return len(self._running)

    def start(
        self, claim: Claim, deliver: Callable[[Delivery], Coroutine[Any, Any, Results]]
    ) -> asyncio.Task[Results]:
        """Run ``deliver`` for ``claim`` as a task of the running loop, tracked until it
        ends.
        """
        delivery = Delivery.of(claim)
        task = asyncio.get_running_loop().create_task(deliver(delivery))
        self._running[task] = delivery
        task.add_done_callback(self._ended)
        return task

    def entry_ids(self) -> frozenset[str]:
        """The outbox entries being delivered now (a drain leaves them alone)."""
        return frozenset(delivery.claim.entry.id for delivery in self._running.values())

    async def wait(self, tasks: Collection[asyncio.Task[Results]], at_most: float | None) -> None:
        """Wait until ``tasks`` are done, at most ``at_most`` seconds (None: no limit, 0:
        not at all). A task still running goes on.
        """
        if not tasks or (at_most is not None and at_most <= 0):
            return
        await asyncio.wait(tasks, timeout=at_most)

    async def wait_all(self, at_most: float | None) -> int:
        """Wait until nothing is in flight, at most ``at_most`` seconds (deliveries started
        meanwhile included); return how many are still running.
        """
        loop = asyncio.get_running_loop()
        deadline = None if at_most is None else loop.time() + at_most
        while self._running:
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                break
            await asyncio.wait(list(self._running), timeout=left)
        return len(self._running)

    async def settle(self, grace: float) -> list[Delivery]:
        """Wait at most ``grace`` seconds for the deliveries in flight, then cancel the
        rest; return their records, once each has had :data:`CANCEL_WAIT` to put its entry
        back.
        """
        await self.wait_all(grace)
        left = dict(self._running)
        for task in left:
            task.cancel()
        if left:
            await asyncio.wait(left, timeout=CANCEL_WAIT)
        return list(left.values())

    def _ended(self, task: asyncio.Task[Results]) -> None:
        self._running.pop(task, None)
