"""The outbox on every store backend (memory, SQLite, Redis), on a manual clock: entries,
leases and their expiry, acknowledgement, rescheduling, and what a drain takes."""

from __future__ import annotations

import json

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaperone import Destination, ManualClock, Outcome
from chaperone._outbox import (
    DUE_INDEX,
    ENTRY_PREFIX,
    LEASE_PREFIX,
    Outbox,
    OutboxEntry,
    SecretBook,
)
from chaperone.store import MemoryStore, Store
from helpers.delivery import make_alert

LEASE = 15.0
SECRET_URL = "https://hooks.example.test/services/T0/B0/outbox-secret-4711"  # noqa: S105 - looked for


def outbox(store: Store, clock: ManualClock, owner: str, book: SecretBook | None = None) -> Outbox:
    """An outbox on ``store`` whose leases say ``owner`` (one per simulated process)."""
    return Outbox(store, clock, owner=owner, secrets=book)


def everything(store: Store) -> str:
    """Every outbox key and value the store holds, as one text."""
    keys = store.keys("outbox:")
    values = store.get_many(keys)
    due = store.due(DUE_INDEX, float("inf"), 1000)
    return json.dumps([keys, values, due])


class TestEnqueue:
    """An entry is in the store, held by its writer, from the moment it is enqueued."""

    def test_entry_is_stored_and_held(self, store: Store, clock: ManualClock) -> None:
        """The entry is listed at once, and another process cannot claim it while its
        writer's lease lasts.
        """
        mine = outbox(store, clock, "one")
        claim = mine.enqueue(make_alert("a"), Destination(channel="slack"), lease=LEASE)
        ((entry, due),) = mine.entries()
        assert entry.id == claim.entry.id
        assert entry.alert == make_alert("a")
        assert due == clock.timestamp() + LEASE
        assert store.get(LEASE_PREFIX + entry.id) == "one"
        assert outbox(store, clock, "two").claim_due(10, lease=LEASE) == []

    def test_entry_round_trips(self, store: Store, clock: ManualClock) -> None:
        """What another process reads back is the alert and destination written, route,
        runbook and fallback mark included.
        """
        destination = Destination(
            channel="mail",
            route="payments",
            settings={"to": "ops@example.test", "max_attempts": 5},
            runbook_url="https://runbooks.example.test/stuck",
            fallback_of="slack",
        )
        outbox(store, clock, "one").enqueue(make_alert("a"), destination, lease=LEASE)
        clock.advance(LEASE)
        (claim,) = outbox(store, clock, "two").claim_due(10, lease=LEASE)
        assert claim.entry.alert == make_alert("a")
        assert claim.entry.destination == destination
        assert claim.entry.attempts == 0

    def test_no_secret_is_stored(self, store: Store, clock: ManualClock) -> None:
        """A destination's secret setting is stored as a reference: no byte of it is in
        the store, and a process that knows the configured secret reads it back.
        """
        book = SecretBook(lambda channel, key: key == "webhook_url")
        destination = Destination(channel="slack", settings={"webhook_url": SECRET_URL})
        outbox(store, clock, "one", book).enqueue(make_alert(), destination, lease=LEASE)
        assert SECRET_URL not in everything(store)
        assert "outbox-secret-4711" not in everything(store)
        configured = SecretBook()
        configured.learn_all([SECRET_URL])
        clock.advance(LEASE)
        (claim,) = outbox(store, clock, "two", configured).claim_due(10, lease=LEASE)
        assert claim.entry.destination.settings == {"webhook_url": SECRET_URL}

    def test_an_entry_whose_secret_is_unknown_is_dropped(
        self, store: Store, clock: ManualClock
    ) -> None:
        """A process that does not know the secret (the configuration changed) cannot
        deliver the entry: it is dropped, logged, not retried for ever.
        """
        book = SecretBook(lambda channel, key: key == "webhook_url")
        destination = Destination(channel="slack", settings={"webhook_url": SECRET_URL})
        outbox(store, clock, "one", book).enqueue(make_alert(), destination, lease=LEASE)
        clock.advance(LEASE)
        assert outbox(store, clock, "two").claim_due(10, lease=LEASE) == []
        assert store.keys("outbox:") == []
        assert store.due(DUE_INDEX, float("inf"), 10) == []


class TestLease:
    """One holder at a time; a dead holder's entries are taken over when the lease ends."""

    def test_expired_lease_is_taken_over(self, store: Store, clock: ManualClock) -> None:
        """Nobody else claims an entry before its lease ends; then exactly one does, and
        the first holder learns it lost the entry.
        """
        first = outbox(store, clock, "one")
        claim = first.enqueue(make_alert(), Destination(channel="slack"), lease=LEASE)
        second, third = outbox(store, clock, "two"), outbox(store, clock, "three")
        clock.advance(LEASE - 0.5)
        assert second.claim_due(10, lease=LEASE) == []
        clock.advance(0.5)
        (taken,) = second.claim_due(10, lease=LEASE)
        assert taken.entry.id == claim.entry.id
        assert third.claim_due(10, lease=LEASE) == []
        assert first.renew(claim, LEASE) is False

    def test_renewing_in_time_keeps_the_entry(self, store: Store, clock: ManualClock) -> None:
        """A holder that renews before the end keeps the entry past the first lease."""
        first = outbox(store, clock, "one")
        claim = first.enqueue(make_alert(), Destination(channel="slack"), lease=LEASE)
        clock.advance(LEASE / 2)
        assert first.renew(claim, LEASE) is True
        clock.advance(LEASE - 1)
        assert outbox(store, clock, "two").claim_due(10, lease=LEASE) == []
        assert claim.lease_until == clock.timestamp() + 1

    def test_a_lapsed_lease_nobody_took_is_taken_back(
        self, store: Store, clock: ManualClock
    ) -> None:
        """A holder whose lease ran out while nobody claimed the entry gets it back."""
        first = outbox(store, clock, "one")
        claim = first.enqueue(make_alert(), Destination(channel="slack"), lease=LEASE)
        clock.advance(LEASE + 5)
        assert first.renew(claim, LEASE) is True
        assert outbox(store, clock, "two").claim_due(10, lease=LEASE) == []

    def test_renewing_an_entry_finished_elsewhere_fails(
        self, store: Store, clock: ManualClock
    ) -> None:
        """A stalled holder whose entry was taken over and acknowledged meanwhile does not
        get it back.
        """
        first = outbox(store, clock, "one")
        claim = first.enqueue(make_alert(), Destination(channel="slack"), lease=LEASE)
        clock.advance(LEASE)
        second = outbox(store, clock, "two")
        (taken,) = second.claim_due(10, lease=LEASE)
        second.ack(taken)
        assert first.renew(claim, LEASE) is False
        assert store.keys("outbox:") == []


class TestAckAndReschedule:
    """An entry leaves only by acknowledgement; a rescheduled one comes due at its time."""

    def test_ack_removes_everything(self, store: Store, clock: ManualClock) -> None:
        """Entry, due time and lease are gone, and no later drain finds anything."""
        mine = outbox(store, clock, "one")
        claim = mine.enqueue(make_alert(), Destination(channel="slack"), lease=LEASE)
        mine.ack(claim)
        assert store.keys("outbox:") == []
        assert store.due(DUE_INDEX, float("inf"), 10) == []
        clock.advance(LEASE * 10)
        assert outbox(store, clock, "two").claim_due(10, lease=LEASE) == []

    def test_reschedule_makes_it_due_later_for_anyone(
        self, store: Store, clock: ManualClock
    ) -> None:
        """A rescheduled entry keeps its attempts and last outcome, is free of its lease,
        and comes due exactly at its new time, for whichever process drains first.
        """
        mine = outbox(store, clock, "one")
        claim = mine.enqueue(make_alert(), Destination(channel="slack"), lease=LEASE)
        last = Outcome.transient("HTTP 429", retry_after=30.0, status_code=429)
        tried = attrs.evolve(claim.entry, attempts=2, last=last)
        mine.reschedule(claim, tried, clock.timestamp() + 30)
        assert store.get(LEASE_PREFIX + claim.entry.id) is None
        other = outbox(store, clock, "two")
        clock.advance(29.999)
        assert other.claim_due(10, lease=LEASE) == []
        clock.advance(0.001)
        (taken,) = other.claim_due(10, lease=LEASE)
        assert (taken.entry.attempts, taken.entry.last) == (2, last)

    def test_claim_due_takes_at_most_limit_earliest_first(
        self, store: Store, clock: ManualClock
    ) -> None:
        """A drain takes the earliest due entries, no more than asked."""
        mine = outbox(store, clock, "one")
        for number in range(5):
            claim = mine.enqueue(make_alert(f"k{number}"), Destination(channel="x"), lease=LEASE)
            mine.reschedule(claim, claim.entry, clock.timestamp() + 5 - number)
        clock.advance(10)
        taken = outbox(store, clock, "two").claim_due(2, lease=LEASE)
        assert [claim.entry.alert.key for claim in taken] == ["k4", "k3"]

    def test_stale_index_member_and_unreadable_entry_are_dropped(
        self, store: Store, clock: ManualClock
    ) -> None:
        """A due time with no entry (its writer died in between) and an entry that is not
        JSON are cleaned away by the drain, which claims neither.
        """
        store.schedule(DUE_INDEX, "ghost", clock.timestamp())
        store.schedule(DUE_INDEX, "garbage", clock.timestamp())
        store.set(ENTRY_PREFIX + "garbage", "{not json")
        assert outbox(store, clock, "one").claim_due(10, lease=LEASE) == []
        assert store.due(DUE_INDEX, float("inf"), 10) == []
        assert store.keys("outbox:") == []

    def test_next_due(self, store: Store, clock: ManualClock) -> None:
        """next_due is the earliest due time, None for an empty outbox."""
        mine = outbox(store, clock, "one")
        assert mine.next_due() is None
        claim = mine.enqueue(make_alert(), Destination(channel="x"), lease=LEASE)
        assert mine.next_due() == clock.timestamp() + LEASE
        mine.ack(claim)
        assert mine.next_due() is None


class TestEntryFormat:
    """Unreadable records are refused with one error type."""

    @pytest.mark.parametrize(
        "text", ["", "[]", "{}", '{"alert": {}, "destination": {}}', '{"destination": 3}']
    )
    def test_unreadable(self, text: str) -> None:
        """Anything but a whole entry raises UnreadableEntryError (a ValueError)."""
        with pytest.raises(ValueError, match=r"."):
            OutboxEntry.from_json("x", text, SecretBook())


class TestOneHolderProperty:
    """Whatever the timing, at most one process holds an entry at any moment."""

    @settings(max_examples=60, deadline=None)
    @given(
        steps=st.lists(
            st.tuples(
                st.integers(min_value=0, max_value=2),
                st.sampled_from(["claim", "renew", "ack", "reschedule"]),
                st.floats(min_value=0, max_value=20),
            ),
            max_size=40,
        )
    )
    def test_at_most_one_live_holder(self, steps: list[tuple[int, str, float]]) -> None:
        """Three processes claim, renew, acknowledge and reschedule one entry in any
        order while time passes: no two of them ever think they hold it, and once it is
        acknowledged nobody holds it again.
        """
        clock = ManualClock()
        store = MemoryStore(clock)
        boxes = [outbox(store, clock, f"p{n}") for n in range(3)]
        held = {0: boxes[0].enqueue(make_alert(), Destination(channel="x"), lease=LEASE)}
        acked = False
        for who, action, wait in steps:
            clock.advance(wait)
            now = clock.timestamp()
            claim = held.get(who)
            if action == "claim":
                for taken in boxes[who].claim_due(5, lease=LEASE):
                    held[who] = taken
            elif claim is None:
                continue
            elif action == "renew" and not boxes[who].renew(claim, LEASE):
                del held[who]
            elif action == "ack" and now < claim.lease_until:
                boxes[who].ack(claim)
                del held[who]
                acked = True
            elif action == "reschedule" and now < claim.lease_until:
                boxes[who].reschedule(claim, claim.entry, now + wait)
                del held[who]
            live = [n for n, claim in held.items() if claim.lease_until > clock.timestamp()]
            assert len(live) <= 1, f"two live holders: {live}"
            if acked:
                assert not live
        store.close()
