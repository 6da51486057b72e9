"""The runtime's send gates: at most so many sends per destination and in total, a slot
never idle while someone waits for it, and destinations served in turn when the total is
what limits."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaperone._gates import PER_DESTINATION, TOTAL, DeliveryGates

T = TypeVar("T")

DESTINATIONS = ("slack:a", "slack:b", "pagerduty:c")


def on_a_loop(scenario: Callable[[], Awaitable[T]]) -> T:
    """Run ``scenario`` on a fresh event loop (the gates' futures belong to one)."""

    async def main() -> T:
        return await scenario()

    return asyncio.run(main())


class Ledger:
    """The requests made to a gate, granted or waiting, and the slots given back."""

    def __init__(self, gates: DeliveryGates) -> None:
        self.gates = gates
        self.requests: list[tuple[str, asyncio.Future[None]]] = []
        self.released: set[int] = set()
        self.withdrawn: set[int] = set()

    def request(self, destination_id: str) -> None:
        """Ask for a slot of the destination."""
        self.requests.append((destination_id, self.gates.request(destination_id)))

    def held(self) -> list[int]:
        """Indexes of the requests granted and not given back."""
        return [
            index
            for index, (_destination, future) in enumerate(self.requests)
            if future.done()
            and not future.cancelled()
            and index not in self.released
            and index not in self.withdrawn
        ]

    def waiting(self) -> list[int]:
        """Indexes of the requests still waiting."""
        return [index for index, (_d, future) in enumerate(self.requests) if not future.done()]

    def release(self, pick: int) -> None:
        """Give back one held slot, chosen by ``pick``."""
        held = self.held()
        if held:
            index = held[pick % len(held)]
            self.released.add(index)
            self.gates.release(self.requests[index][0])

    def withdraw(self, pick: int) -> None:
        """Give up one request still waiting, chosen by ``pick``."""
        waiting = self.waiting()
        if waiting:
            index = waiting[pick % len(waiting)]
            self.withdrawn.add(index)
            destination_id, future = self.requests[index]
            self.gates.withdraw(destination_id, future)


operations = st.lists(
    st.tuples(
        st.sampled_from(["request", "release", "withdraw"]),
        st.sampled_from(DESTINATIONS),
        st.integers(min_value=0, max_value=50),
    ),
    max_size=80,
)


class TestLimits:
    """No destination holds more than its slots, and none are left idle."""

    @settings(max_examples=200, deadline=None)
    @given(
        per_destination=st.integers(min_value=1, max_value=4),
        total=st.integers(min_value=1, max_value=6),
        steps=operations,
    )
    def test_limits_hold_and_no_slot_idles(
        self, per_destination: int, total: int, steps: list[tuple[str, str, int]]
    ) -> None:
        """Whatever the requests, releases and withdrawals: each destination holds at most
        its slots and all of them at most the total; the gate's counts agree with what was
        granted; and a waiting request always has its destination's slots or the total
        used up (a free slot never idles while someone could take it).
        """

        async def scenario() -> None:
            gates = DeliveryGates(per_destination=per_destination, total=total)
            ledger = Ledger(gates)
            for operation, destination_id, pick in steps:
                if operation == "request":
                    ledger.request(destination_id)
                elif operation == "release":
                    ledger.release(pick)
                else:
                    ledger.withdraw(pick)
                held = ledger.held()
                assert gates.busy == len(held) <= total
                for name in DESTINATIONS:
                    mine = [i for i in held if ledger.requests[i][0] == name]
                    assert gates.busy_for(name) == len(mine) <= per_destination
                    waiting = [i for i in ledger.waiting() if ledger.requests[i][0] == name]
                    assert gates.waiting_for(name) == len(waiting)
                    if waiting:
                        assert len(mine) == per_destination or len(held) == total

        on_a_loop(scenario)

    def test_a_hanging_destination_holds_only_its_own_slots(self) -> None:
        """With the runtime's limits, a destination with three times its slots of sends
        hanging holds exactly its own slots; another destination's send is granted at once.
        """

        async def scenario() -> tuple[int, int, bool]:
            gates = DeliveryGates()
            hanging = [gates.request("slack:hangs") for _ in range(3 * PER_DESTINATION)]
            other = gates.request("pagerduty:fine")
            return sum(f.done() for f in hanging), gates.waiting_for("slack:hangs"), other.done()

        granted, waiting, other_granted = on_a_loop(scenario)
        assert granted == PER_DESTINATION
        assert waiting == 2 * PER_DESTINATION
        assert other_granted
        assert TOTAL > PER_DESTINATION

    def test_a_release_of_what_was_not_held_is_an_error(self) -> None:
        """Giving back a slot nobody held raises: a bug of the caller, not silence."""

        async def scenario() -> None:
            DeliveryGates().release("slack:a")

        with pytest.raises(RuntimeError, match="not held"):
            on_a_loop(scenario)

    @pytest.mark.parametrize(("per_destination", "total"), [(0, 4), (4, 0)])
    def test_a_gate_needs_a_slot(self, per_destination: int, total: int) -> None:
        """Limits below one are refused."""
        with pytest.raises(ValueError, match="at least one slot"):
            DeliveryGates(per_destination=per_destination, total=total)


class TestTurns:
    """When the total is the limit, destinations take turns."""

    def test_destinations_are_served_in_turn(self) -> None:
        """One slot in all: a destination with five requests waiting and another with two
        are granted alternately as the slot is given back, not five first.
        """

        async def scenario() -> list[str]:
            gates = DeliveryGates(per_destination=4, total=1)
            requests = [("many", gates.request("many")) for _ in range(5)]
            requests += [("few", gates.request("few")) for _ in range(2)]
            order: list[str] = []
            seen: set[int] = set()
            while len(order) < len(requests):
                (index,) = [
                    index
                    for index, (_name, future) in enumerate(requests)
                    if future.done() and index not in seen
                ]
                seen.add(index)
                name = requests[index][0]
                order.append(name)
                gates.release(name)
            return order

        assert on_a_loop(scenario) == ["many", "few", "many", "few", "many", "many", "many"]

    def test_a_withdrawn_request_is_never_granted(self) -> None:
        """A request given up before its turn is skipped; the next one gets the slot."""

        async def scenario() -> tuple[bool, bool, int]:
            gates = DeliveryGates(per_destination=1, total=1)
            first = gates.request("a")
            second = gates.request("a")
            third = gates.request("a")
            gates.withdraw("a", second)
            gates.release("a")
            return second.cancelled(), third.done() and not first.cancelled(), gates.busy

        second_cancelled, third_granted, busy = on_a_loop(scenario)
        assert second_cancelled
        assert third_granted
        assert busy == 1

    def test_withdrawing_a_granted_request_gives_its_slot_back(self) -> None:
        """A request granted just before its waiter gave up returns its slot."""

        async def scenario() -> tuple[int, bool]:
            gates = DeliveryGates(per_destination=1, total=1)
            granted = gates.request("a")
            waiting = gates.request("b")
            gates.withdraw("a", granted)
            return gates.busy_for("a"), waiting.done()

        busy, other_granted = on_a_loop(scenario)
        assert busy == 0
        assert other_granted
