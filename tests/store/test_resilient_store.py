"""ResilientStore: its states, what reaches the primary, and how the outage is carried back.

The primary here is a real MemoryStore behind a switch (SwitchedStore) that makes it fail
on demand; the faults a user meets (a corrupt or full file, a lock, a stopped Redis) are in
test_resilient_faults.py. The contract suite runs on ResilientStore too (conftest.py).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from structlog.testing import capture_logs

from chaperone._clock import ManualClock
from chaperone._exceptions import ConfigError, StoreError
from chaperone._outbox import DUE_INDEX, ENTRY_PREFIX, LEASE_PREFIX, Outbox
from chaperone._secrets import MASK, MASKER
from chaperone._verdicts import Destination
from chaperone.store import (
    MemoryStore,
    ResilientStore,
    Store,
    StoreChange,
    StoreState,
    open_resilient_store,
)
from chaperone.store import _resilient as resilient_module
from chaperone.store._journal import _KEPT_INDEXES, _KEPT_KEY_PREFIXES
from chaperone.store._resilient import PROBE_KEY_PREFIX
from helpers.delivery import make_alert
from helpers.stores import SwitchedStore


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def primary(clock: ManualClock) -> Iterator[SwitchedStore]:
    """A memory store that fails while its switch is off."""
    switched = SwitchedStore(MemoryStore(clock, "memory://primary"))
    yield switched
    switched.inner.close()


@pytest.fixture
def store(clock: ManualClock, primary: SwitchedStore) -> Iterator[ResilientStore]:
    """A ResilientStore over ``primary``, probing every 5 s of the clock."""
    opened = ResilientStore("memory://primary", clock, lambda: primary, probe_interval=5.0)
    yield opened
    opened.close()


def _degrade(store: ResilientStore, primary: SwitchedStore) -> None:
    """Send the primary away and let one operation find out."""
    primary.away = True
    store.get("anything")
    assert store.state is StoreState.DEGRADED


def _recover(store: ResilientStore, primary: SwitchedStore) -> None:
    primary.away = False
    assert store.probe()


class TestStates:
    def test_up_when_the_primary_opens(self, store: ResilientStore, primary: SwitchedStore) -> None:
        """A primary that opens makes an up store whose operations reach it."""
        assert store.state is StoreState.UP
        assert store.reason is None
        assert store.degraded_since is None
        store.set("k", "v")
        assert primary.inner.get("k") == "v"
        assert isinstance(store, Store)

    def test_degraded_when_the_primary_cannot_be_opened(self, clock: ManualClock) -> None:
        """An opener that raises StoreError leaves the store degraded, with the reason and
        the time, and every operation works from memory."""

        def opener() -> Store:
            raise StoreError("cannot open the SQLite store /x: file is not a database")

        store = ResilientStore("sqlite:////x", clock, opener)
        try:
            assert store.state is StoreState.DEGRADED
            assert store.reason is not None
            assert "file is not a database" in store.reason
            assert store.degraded_since == clock.timestamp()
            assert store.set_if_absent("k", "v", ttl=10)
            assert store.incr("n", 2) == 2
            assert store.get_many(["k", "n"]) == {"k": "v", "n": "2"}
            assert store.pending == 2
        finally:
            store.close()

    def test_plain_os_error_at_open_degrades_too(self, clock: ManualClock) -> None:
        """An OSError from the opener (a full disk, a missing mount) degrades the store."""

        def opener() -> Store:
            raise OSError(28, "No space left on device")

        store = ResilientStore("sqlite:////x", clock, opener)
        try:
            assert store.state is StoreState.DEGRADED
            assert store.reason is not None
            assert "No space left" in store.reason
        finally:
            store.close()

    def test_config_error_propagates(self, clock: ManualClock) -> None:
        """A URL that is a configuration error raises, as open_store does."""
        with pytest.raises(ConfigError, match="CHAPERONE_STORE"):
            open_resilient_store("ftp://nowhere", clock)

    def test_reason_is_free_of_secrets(self, clock: ManualClock) -> None:
        """A secret in the primary's error message is masked in the reason."""
        secret = "pa55-w0rd-in-an-error"  # noqa: S105  # a test value
        MASKER.add(secret)

        def opener() -> Store:
            raise StoreError(f"could not connect with {secret}")

        store = ResilientStore("redis://x", clock, opener)
        try:
            assert store.reason is not None
            assert secret not in store.reason
            assert MASK in store.reason
        finally:
            store.close()

    def test_closed_message_hides_the_password(self, clock: ManualClock) -> None:
        """A password in the store's URL never shows in its errors."""
        url = "redis://:hunter2-in-the-url@127.0.0.1:1/0"
        store = ResilientStore(url, clock, lambda: MemoryStore(clock))
        store.close()
        with pytest.raises(StoreError, match="closed") as caught:
            store.get("k")
        assert "hunter2-in-the-url" not in str(caught.value)

    def test_failed_operation_degrades_and_is_answered_from_memory(
        self, store: ResilientStore, primary: SwitchedStore, clock: ManualClock
    ) -> None:
        """An operation the primary fails is done on the shadow: the caller gets an answer,
        and the store is degraded from then on."""
        primary.inner.set("k", "old")
        primary.away = True
        clock.advance(3)
        assert store.set_if_absent("k", "new", ttl=10)  # the shadow knows no "k"
        assert store.state is StoreState.DEGRADED
        assert store.degraded_since == clock.timestamp()
        assert store.reason == "the store is away (set_if_absent)"
        assert store.get("k") == "new"

    def test_value_errors_propagate_in_both_states(
        self, store: ResilientStore, primary: SwitchedStore
    ) -> None:
        """A bad argument (incr on text) raises ValueError and changes no state."""
        store.set("text", "abc")
        with pytest.raises(ValueError, match="not a 64-bit integer"):
            store.incr("text")
        assert store.state is StoreState.UP
        _degrade(store, primary)
        store.set("text", "abc")
        with pytest.raises(ValueError, match="not a 64-bit integer"):
            store.incr("text")
        with pytest.raises(ValueError, match="ttl"):
            store.set("k", "v", ttl=-1)
        assert store.pending == 1

    def test_degraded_leaves_the_primary_alone(
        self, store: ResilientStore, primary: SwitchedStore
    ) -> None:
        """While degraded, no operation touches the primary, even once it is back."""
        _degrade(store, primary)
        primary.away = False
        before = primary.calls
        for index in range(50):
            store.set(f"k{index}", "v")
            store.get(f"k{index}")
            store.push("q", "r")
        assert primary.calls == before

    def test_maybe_recover_waits_for_the_probe_interval(
        self, store: ResilientStore, primary: SwitchedStore, clock: ManualClock
    ) -> None:
        """maybe_recover probes only once probe_interval has passed since the last probe."""
        _degrade(store, primary)
        primary.away = False
        before = primary.calls
        clock.advance(4.9)
        assert not store.maybe_recover()
        assert primary.calls == before
        clock.advance(0.1)
        assert store.maybe_recover()
        assert store.state is StoreState.UP
        assert store.maybe_recover()

    def test_failed_probe_restarts_the_interval(
        self, store: ResilientStore, primary: SwitchedStore, clock: ManualClock
    ) -> None:
        """A probe that fails is not tried again before another interval has passed."""
        _degrade(store, primary)
        clock.advance(5)
        assert not store.maybe_recover()
        primary.away = False
        clock.advance(4)
        assert not store.maybe_recover()
        clock.advance(1)
        assert store.maybe_recover()

    def test_probe_reopens_a_primary_that_could_not_be_opened(self, clock: ManualClock) -> None:
        """Each probe calls the opener again until it succeeds."""
        attempts: list[int] = []
        opened = MemoryStore(clock)

        def opener() -> Store:
            attempts.append(1)
            if len(attempts) < 3:
                raise StoreError(f"attempt {len(attempts)} failed")
            return opened

        store = ResilientStore("memory://", clock, opener)
        try:
            store.set("k", "v")
            assert not store.probe()
            assert store.reason == "attempt 2 failed"
            assert store.probe()
            assert len(attempts) == 3
            assert opened.get("k") == "v"
        finally:
            store.close()

    def test_probe_of_an_up_store_that_fails_degrades_it(
        self, store: ResilientStore, primary: SwitchedStore
    ) -> None:
        """A probe is also a health check: an up store whose primary fails it goes degraded."""
        assert store.probe()
        primary.away = True
        assert not store.probe()
        assert store.state is StoreState.DEGRADED

    def test_probe_leaves_no_key_behind(
        self, store: ResilientStore, primary: SwitchedStore
    ) -> None:
        """The probe's write is deleted again."""
        assert store.probe()
        assert primary.inner.keys(PROBE_KEY_PREFIX) == []

    def test_closed_store_refuses_and_probes_fail(
        self, store: ResilientStore, primary: SwitchedStore
    ) -> None:
        """After close every operation raises StoreError and a probe answers False."""
        _degrade(store, primary)
        store.close()
        with pytest.raises(StoreError, match="closed"):
            store.get("k")
        assert not store.probe()
        store.close()

    def test_closing_while_degraded_says_what_is_lost(
        self, store: ResilientStore, primary: SwitchedStore
    ) -> None:
        """Closing with changes not carried yet logs how many."""
        _degrade(store, primary)
        store.set("a", "1")
        store.set("b", "2")
        with capture_logs() as logs:
            store.close()
        lost = [log for log in logs if "never reached" in log["event"]]
        assert [log["changes"] for log in lost] == [2]


class TestListeners:
    def test_called_once_per_change(self, store: ResilientStore, primary: SwitchedStore) -> None:
        """A listener hears each change once, however many operations fail or probes run."""
        heard: list[StoreChange] = []
        store.add_listener(heard.append)
        primary.away = True
        for _ in range(5):
            store.set("k", "v")
        assert not store.probe()
        primary.away = False
        assert store.probe()
        assert store.probe()
        assert [change.state for change in heard] == [StoreState.DEGRADED, StoreState.UP]
        assert heard[0].reason == "the store is away (set)"
        assert heard[1].reason is None

    def test_a_failing_listener_is_logged_and_the_others_still_hear(
        self, store: ResilientStore, primary: SwitchedStore
    ) -> None:
        """A listener that raises does not stop the operation nor the next listener."""
        heard: list[StoreState] = []

        def broken(_change: StoreChange) -> None:
            raise RuntimeError("listener bug")

        store.add_listener(broken)
        store.add_listener(lambda change: heard.append(change.state))
        primary.away = True
        with capture_logs() as logs:
            store.set("k", "v")
        assert heard == [StoreState.DEGRADED]
        assert store.get("k") == "v"
        assert any(log["event"] == "a listener of the store's state failed" for log in logs)

    def test_listeners_run_outside_the_lock(
        self, store: ResilientStore, primary: SwitchedStore
    ) -> None:
        """A listener may use the store (as the runtime does, rewriting its state)."""
        store.add_listener(lambda change: store.set("state", change.state.value))
        _degrade(store, primary)
        assert store.get("state") == "degraded"
        _recover(store, primary)
        assert primary.inner.get("state") == "up"


class TestCarry:
    def test_counters_add_up(self, store: ResilientStore, primary: SwitchedStore) -> None:
        """What incr added during the outage is added to the primary's counter."""
        store.incr("hits", 5)
        _degrade(store, primary)
        primary.inner.incr("hits", 100)  # another process, meanwhile
        assert store.incr("hits", 2) == 2  # the shadow starts from nothing
        store.incr("hits", 1)
        _recover(store, primary)
        assert primary.inner.get("hits") == "108"

    def test_a_claim_made_meanwhile_wins(
        self, store: ResilientStore, primary: SwitchedStore
    ) -> None:
        """A key first written by set_if_absent is claimed in the primary, where another
        process's claim wins; what incr added after the claim goes to the winner's value."""
        _degrade(store, primary)
        assert store.set_if_absent("lock", "mine", ttl=60)
        assert store.set_if_absent("count", "10", ttl=60)
        store.incr("count", 5)
        primary.inner.set_if_absent("lock", "theirs", ttl=60)
        primary.inner.set_if_absent("count", "1", ttl=60)
        _recover(store, primary)
        assert primary.inner.get("lock") == "theirs"
        assert primary.inner.get("count") == "6"

    def test_an_unclaimed_key_gets_the_claim_and_its_ttl(
        self, store: ResilientStore, primary: SwitchedStore, clock: ManualClock
    ) -> None:
        """A claim nobody else made arrives with what is left of its TTL."""
        _degrade(store, primary)
        assert store.set_if_absent("lock", "mine", ttl=60)
        clock.advance(20)
        _recover(store, primary)
        assert primary.inner.entry("lock") == ("mine", clock.timestamp() + 40)

    def test_set_and_delete_overwrite(
        self, store: ResilientStore, primary: SwitchedStore, clock: ManualClock
    ) -> None:
        """Keys set meanwhile are set with their remaining TTL; keys deleted are deleted."""
        store.set("gone", "v")
        store.set("changed", "old")
        _degrade(store, primary)
        store.delete("gone")
        store.set("changed", "new", ttl=30)
        store.incr("changed-then-counted", 1)
        store.set("changed-then-counted", "40")
        store.incr("changed-then-counted", 2)
        clock.advance(10)
        _recover(store, primary)
        assert primary.inner.get("gone") is None
        assert primary.inner.entry("changed") == ("new", clock.timestamp() + 20)
        assert primary.inner.get("changed-then-counted") == "42"

    def test_deleted_prefixes_go_first(self, store: ResilientStore, primary: SwitchedStore) -> None:
        """A prefix deleted meanwhile is deleted in the primary, and keys written under it
        afterwards arrive, counters as written rather than added."""
        for key in ("p:a", "p:b", "q:a"):
            store.set(key, "5")
        _degrade(store, primary)
        store.set("p:c", "before")
        assert store.delete_prefix("p:") == 1
        store.incr("p:a", 3)
        store.set("p:d", "after")
        _recover(store, primary)
        assert primary.inner.get_many(["p:a", "p:b", "p:c", "p:d", "q:a"]) == {
            "p:a": "3",
            "p:d": "after",
            "q:a": "5",
        }

    def test_streams_deadlines_and_queues(
        self, store: ResilientStore, primary: SwitchedStore
    ) -> None:
        """Appends arrive in order with their max_len, deadlines as last set, and queue
        records pushed and not popped in order."""
        store.append("history", "r0", max_len=3)
        store.schedule("due", "gone", 1.0)
        store.schedule("due", "moved", 2.0)
        store.push("q", "old")
        _degrade(store, primary)
        for index in range(1, 4):
            store.append("history", f"r{index}", max_len=3)
        store.unschedule("due", "gone")
        store.schedule("due", "moved", 9.0)
        store.schedule("due", "new", 3.0)
        for index in range(4):
            store.push("q", f"new{index}")
        assert store.pop("q", 1) == ["new0"]  # the shadow's oldest, not the primary's
        _recover(store, primary)
        assert primary.inner.tail("history", 10) == ["r3", "r2", "r1"]
        assert primary.inner.due("due", 100.0, 10) == [("new", 3.0), ("moved", 9.0)]
        assert primary.inner.pop("q", 10) == ["old", "new1", "new2", "new3"]

    def test_the_shadow_is_emptied_after_carrying(
        self, store: ResilientStore, primary: SwitchedStore
    ) -> None:
        """Once up again, reads see the primary, and nothing is carried twice."""
        _degrade(store, primary)
        store.incr("n", 1)
        store.push("q", "r")
        _recover(store, primary)
        assert store.pending == 0
        assert store.pop("q", 10) == ["r"]
        _degrade(store, primary)
        _recover(store, primary)
        assert primary.inner.get("n") == "1"
        assert primary.inner.pop("q", 10) == []

    def test_a_carry_that_fails_half_way_keeps_the_rest(
        self, store: ResilientStore, primary: SwitchedStore
    ) -> None:
        """The primary failing while it is caught up leaves the store degraded, with what
        was not carried kept; the next probe carries the rest, each item once."""
        _degrade(store, primary)
        for index in range(6):
            store.incr(f"n{index}", 1)
            store.push("q", f"r{index}")
        primary.away = False
        primary.budget = 3 + 6 + 2  # the probe's own three calls, the keys, two records
        assert not store.probe()
        assert store.state is StoreState.DEGRADED
        assert store.pending == 12 - 8
        store.incr("n0", 10)
        assert store.pop("q", 1) == ["r2"]  # r0 and r1 are in the primary already
        primary.away = False
        assert store.probe()
        assert primary.inner.get_many([f"n{index}" for index in range(6)]) == {
            "n0": "11",
            **{f"n{index}": "1" for index in range(1, 6)},
        }
        assert primary.inner.pop("q", 10) == ["r0", "r1", "r3", "r4", "r5"]

    @pytest.mark.parametrize(("before", "after"), [(None, "claimed"), ("10", "12")])
    def test_a_claim_after_a_counter_expired(
        self,
        store: ResilientStore,
        primary: SwitchedStore,
        clock: ManualClock,
        before: str | None,
        after: str,
    ) -> None:
        """A counter that expired in the shadow and was then claimed is claimed in the
        primary; where the primary's value lives on, the counter's sum is added to it."""
        if before is not None:
            store.set("k", before)
        _degrade(store, primary)
        store.incr("k", 2, ttl=5)
        clock.advance(6)
        assert store.set_if_absent("k", "claimed", ttl=60)
        _recover(store, primary)
        assert primary.inner.get("k") == after

    def test_the_journal_keeps_no_more_than_the_streams_hold(
        self, store: ResilientStore, primary: SwitchedStore
    ) -> None:
        """Stream records the shadow trimmed are not kept to be carried."""
        _degrade(store, primary)
        for index in range(100):
            store.append("history", f"r{index}", max_len=3)
        assert store.pending == 3
        _recover(store, primary)
        assert primary.inner.tail("history", 10) == ["r99", "r98", "r97"]

    def test_a_long_journal_is_carried_in_parts(
        self,
        store: ResilientStore,
        primary: SwitchedStore,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """A journal longer than a part is carried a part per hold of the lock, the last
        part whole, and everything arrives."""
        monkeypatch.setattr(resilient_module, "CARRY_PART", 10)
        _degrade(store, primary)
        for index in range(35):
            store.set(f"k{index:02}", "v")
        limits: list[int | None] = []
        journal = store._journal
        carry = journal.carry

        def recording(*args: Any) -> None:
            limits.append(args[-1])
            carry(*args)

        monkeypatch.setattr(journal, "carry", recording)
        _recover(store, primary)
        assert limits == [10, 10, 10, None]
        assert primary.inner.keys("k") == [f"k{index:02}" for index in range(35)]

    def test_an_incr_the_primary_refuses_is_dropped(
        self, store: ResilientStore, primary: SwitchedStore
    ) -> None:
        """A counter whose primary value is not an integer cannot take the outage's sum:
        it is logged and dropped, and the rest is carried."""
        store.set("n", "text")
        _degrade(store, primary)
        store.incr("n", 1)
        store.set("other", "v")
        with capture_logs() as logs:
            _recover(store, primary)
        assert primary.inner.get_many(["n", "other"]) == {"n": "text", "other": "v"}
        assert any(log.get("key") == "n" for log in logs)


class TestJournalBound:
    def test_changes_past_the_limit_are_dropped_and_logged(
        self, clock: ManualClock, primary: SwitchedStore
    ) -> None:
        """Past the journal's limit, changes stay in memory only; outbox keys still travel."""
        store = ResilientStore("memory://", clock, lambda: primary, journal_limit=3)
        try:
            _degrade(store, primary)
            with capture_logs() as logs:
                for index in range(5):
                    store.set(f"k{index}", "v")
                store.set(f"{LEASE_PREFIX}e1", "owner", ttl=60)
                store.schedule(DUE_INDEX, "e1", 5.0)
                store.push("q", "r")
                store.append("s", "r", max_len=5)
            assert store.get("k4") == "v"  # the process still sees it
            assert [log["event"] for log in logs].count(
                "the outage journal is full: changes made while the store is away are kept "
                "in memory only and will not reach it"
            ) == 1
            with capture_logs() as logs:
                _recover(store, primary)
            assert primary.inner.keys("") == ["k0", "k1", "k2", f"{LEASE_PREFIX}e1"]
            assert primary.inner.due(DUE_INDEX, 10.0, 5) == [("e1", 5.0)]
            assert primary.inner.pop("q", 5) == []
            assert [log.get("dropped") for log in logs if "dropped" in log] == [4]
        finally:
            store.close()

    def test_outbox_names_match_the_outbox(self) -> None:
        """The journal's never-dropped names are the outbox's keys and index."""
        assert set(_KEPT_KEY_PREFIXES) == {ENTRY_PREFIX, LEASE_PREFIX}
        assert set(_KEPT_INDEXES) == {DUE_INDEX}


class TestOutbox:
    def test_entries_of_the_outage_arrive_once_or_not_at_all(
        self, store: ResilientStore, primary: SwitchedStore, clock: ManualClock
    ) -> None:
        """An entry enqueued and acknowledged while degraded leaves nothing in the primary;
        one still pending arrives with its due time and lease, and is claimed there once,
        after the lease, by another process."""
        outbox = Outbox(store, clock, owner="here")
        _degrade(store, primary)
        done = outbox.enqueue(make_alert("done"), Destination(channel="log"), lease=30)
        pending = outbox.enqueue(make_alert("pending"), Destination(channel="log"), lease=30)
        outbox.ack(done)
        clock.advance(10)
        _recover(store, primary)
        entry_id = pending.entry.id
        assert primary.inner.keys("outbox:") == [ENTRY_PREFIX + entry_id, LEASE_PREFIX + entry_id]
        assert primary.inner.due(DUE_INDEX, float("inf"), 10) == [(entry_id, pending.lease_until)]
        assert primary.inner.get(LEASE_PREFIX + entry_id) == "here"
        elsewhere = Outbox(primary.inner, clock, owner="elsewhere")
        assert elsewhere.claim_due(10, lease=30) == []
        clock.advance(20)
        claims = elsewhere.claim_due(10, lease=30) + elsewhere.claim_due(10, lease=30)
        assert [claim.entry.id for claim in claims] == [entry_id]
        assert claims[0].entry.alert.key == "pending"


class TestThreads:
    def test_counts_add_up_across_outages(
        self, store: ResilientStore, primary: SwitchedStore
    ) -> None:
        """Threads counting while the primary goes away and comes back several times end,
        once it is up, with every increment in the primary exactly once."""
        threads_count, per_thread = 4, 300
        stop = threading.Event()
        errors: list[BaseException] = []

        def count() -> None:
            try:
                for _ in range(per_thread):
                    store.incr("hits")
                    store.push("q", "r")
            except BaseException as exc:
                errors.append(exc)

        def flap() -> None:
            while not stop.is_set():
                primary.away = not primary.away
                store.probe()

        outages: list[StoreChange] = []
        store.add_listener(outages.append)
        workers = [threading.Thread(target=count) for _ in range(threads_count)]
        flapper = threading.Thread(target=flap)
        flapper.start()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=60)
        stop.set()
        flapper.join(timeout=60)
        assert not errors
        primary.away = False
        assert store.probe()
        total = threads_count * per_thread
        assert any(change.state is StoreState.DEGRADED for change in outages)
        assert primary.inner.get("hits") == str(total)
        assert len(primary.inner.pop("q", 2 * total)) == total
