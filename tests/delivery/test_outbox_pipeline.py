"""The outbox in the pipeline: every routed alert is in the store before its first send,
leaves only when delivered or failed for good, waits there when deferred, and is
delivered by another runtime (another process) when its writer died."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

import chaperone
from chaperone import (
    Alert,
    Chaperone,
    Destination,
    JobStuck,
    ManualClock,
    Monitor,
    Outcome,
    SendContext,
    StoreError,
    _delivery,
)
from chaperone._events import Event
from chaperone.store import MemoryStore, SQLiteStore, Store
from helpers.delivery import (
    AfterDelivery,
    Channels,
    confirm,
    make_alert,
    outcomes,
    scripted,
)
from helpers.runtime import GROUPING_OFF, make_runtime


class Witness:
    """A channel behaviour that notes, at each send, how many entries the outbox holds."""

    def __init__(self) -> None:
        self.runtime: Chaperone | None = None
        self.seen: list[int] = []

    async def __call__(self, alert: Alert, context: SendContext) -> Outcome:
        assert self.runtime is not None
        self.seen.append(len(self.runtime.outbox.entries()))
        return Outcome.delivered("ok")


class Detector:
    """A detector plugin that reports the given events on its first tick only."""

    def __init__(self, events: Sequence[Event]) -> None:
        self.events = list(events)

    @chaperone.hookimpl
    def chaperone_detect(self) -> list[Event]:
        events, self.events = self.events, []
        return events


def stuck(number: int) -> JobStuck:
    """A job-stuck event of its own job."""
    return JobStuck(
        supervision_id=f"job-{number}",
        job_class="App\\Jobs\\Import",
        stuck_duration=timedelta(minutes=5),
        last_heartbeat=None,
    )


def sqlite(path: Path, clock: ManualClock) -> SQLiteStore:
    """A connection to the SQLite file ``path`` (one per simulated process)."""
    return SQLiteStore(path, clock, f"sqlite:///{path}")


class TestWrittenFirst:
    """Every destination's entry is in the store before any network call."""

    def test_every_destination_is_in_the_outbox_before_the_first_send(self) -> None:
        """Both destinations' entries are there when the first channel sends, and none
        once both confirmed.
        """
        witness = Witness()
        plugin = Channels(scripted("one", witness), scripted("two", witness))
        with make_runtime(
            plugin, channels=("one", "two"), timeout=5.0, grouping=GROUPING_OFF
        ) as runtime:
            witness.runtime = runtime
            report = runtime.send(make_alert())
            assert report.delivered
            assert runtime.outbox.entries() == []
        assert witness.seen[0] == 2

    def test_a_monitor_tick_writes_every_alert_before_sending_any(self) -> None:
        """Three events found in one tick: all three alerts are in the outbox before the
        first send, so a kill during delivery loses none of them.
        """
        witness = Witness()
        plugins = (Channels(scripted("hook", witness)), Detector([stuck(n) for n in range(3)]))
        with make_runtime(
            *plugins, channels=("hook",), timeout=5.0, grouping=GROUPING_OFF
        ) as runtime:
            witness.runtime = runtime
            reports = Monitor(runtime, vouch_for=None).tick()
            assert all(alert.delivered for report in reports for alert in report.alerts)
            assert runtime.outbox.entries() == []
        assert witness.seen[0] == 3
        assert len(witness.seen) == 3

    def test_failed_for_good_leaves_the_outbox(self) -> None:
        """A permanent failure is final: the entry goes, the failure hook is called once."""
        hooks = AfterDelivery()
        behaviour, _ = outcomes(Outcome.permanent("HTTP 400", status_code=400))
        with make_runtime(
            Channels(scripted("strict", behaviour)),
            hooks,
            channels=("strict",),
            timeout=5.0,
            grouping=GROUPING_OFF,
        ) as rt:
            rt.send(make_alert())
            assert rt.outbox.entries() == []
        assert hooks.failed_at() == [("strict", 1)]


class TestDeferred:
    """A delivery waiting for a long Retry-After stays in the outbox; the hooks wait."""

    def test_deferred_entry_waits_then_is_delivered_once(
        self, store: Store, clock: ManualClock
    ) -> None:
        """On every backend: deferred with its attempt counted and no hook called; the
        drain after the wait delivers it, calls the delivered hook once, empties the
        outbox; more drains do nothing.
        """
        hooks = AfterDelivery()
        behaviour, calls = outcomes(
            Outcome.transient("HTTP 429", retry_after=60, status_code=429), Outcome.delivered()
        )
        with make_runtime(
            Channels(scripted("hook", behaviour)),
            hooks,
            clock=clock,
            store=store,
            channels=("hook",),
            timeout=5.0,
            grouping=GROUPING_OFF,
        ) as runtime:
            (result,) = runtime.send(make_alert()).deliveries
            assert result.deferred
            ((entry, due),) = runtime.outbox.entries()
            assert (entry.attempts, due) == (1, clock.timestamp() + 60)
            assert hooks.delivered == []
            assert hooks.failed == []
            clock.advance(60)
            (drained,) = runtime.drain_outbox()
            assert drained.ok
            assert drained.attempts == 2
            assert runtime.drain_outbox() == []
            assert runtime.outbox.entries() == []
        assert calls.attempts == [1, 2]
        assert hooks.delivered_to() == [("hook", None)]


class TestTakeOver:
    """What a process left in the outbox is delivered by another, once."""

    def test_entries_of_a_dead_process_are_delivered_after_their_lease(
        self, tmp_path: Path
    ) -> None:
        """A runtime writes two entries and dies before sending (nothing delivered);
        another runtime on the same SQLite file delivers both once their leases ran out,
        not before, each once.
        """
        clock = ManualClock()
        behaviour, calls = outcomes(Outcome.delivered())
        path = tmp_path / "c.db"
        with make_runtime(
            Channels(scripted("hook", behaviour)),
            clock=clock,
            store=sqlite(path, clock),
            channels=("hook",),
            timeout=5,
            grouping=GROUPING_OFF,
        ) as dying:
            _delivery.enqueue(
                dying.dispatcher.delivery, make_alert("a"), [Destination(channel="hook")]
            )
            _delivery.enqueue(
                dying.dispatcher.delivery, make_alert("b"), [Destination(channel="hook")]
            )
        hooks = AfterDelivery()
        with make_runtime(
            Channels(scripted("hook", behaviour)),
            hooks,
            clock=clock,
            store=sqlite(path, clock),
            channels=("hook",),
            timeout=5,
            grouping=GROUPING_OFF,
        ) as heir:
            assert heir.drain_outbox() == []
            clock.advance(5 + 5)  # the send timeout and the lease margin
            drained = heir.drain_outbox()
            assert heir.drain_outbox() == []
        assert sorted(result.status for result in drained) == ["delivered", "delivered"]
        assert sorted(calls.keys) == ["a", "b"]
        assert len(hooks.delivered) == 2

    def test_two_runtimes_draining_at_once_deliver_each_entry_once(self, tmp_path: Path) -> None:
        """Two runtimes (each its own SQLite connection) drain twenty due entries from two
        threads at once: each alert is sent once, the hooks called once for each.
        """
        clock = ManualClock()
        path = tmp_path / "c.db"
        sent: list[str] = []
        lock = threading.Lock()

        async def slowish(alert: Alert, context: SendContext) -> Outcome:
            with lock:
                sent.append(alert.key)
            await asyncio.sleep(0.005)
            return Outcome.delivered()

        with make_runtime(
            Channels(scripted("hook", slowish)),
            clock=clock,
            store=sqlite(path, clock),
            channels=("hook",),
            timeout=5.0,
            grouping=GROUPING_OFF,
        ) as writer:
            for number in range(20):
                (claim,) = _delivery.enqueue(
                    writer.dispatcher.delivery,
                    make_alert(f"k{number}"),
                    [Destination(channel="hook")],
                )
                writer.outbox.reschedule(claim, claim.entry, clock.timestamp())
        hooks = AfterDelivery()
        runtimes = [
            make_runtime(
                Channels(scripted("hook", slowish)),
                hooks,
                clock=clock,
                store=sqlite(path, clock),
                channels=("hook",),
                timeout=5.0,
                grouping=GROUPING_OFF,
            )
            for _ in range(2)
        ]
        results: list[list[Any]] = [[], []]
        start = threading.Barrier(2)

        def drain(index: int) -> None:
            start.wait()
            for _ in range(5):
                results[index].extend(runtimes[index].drain_outbox())

        threads = [threading.Thread(target=drain, args=(index,)) for index in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        for runtime in runtimes:
            runtime.close()
        assert sorted(sent) == sorted(f"k{number}" for number in range(20))
        assert len(hooks.delivered) == 20
        assert len(results[0]) + len(results[1]) == 20


class FailingOutboxStore(MemoryStore):
    """A memory store that refuses every outbox write, as a store that is away would."""

    def set_if_absent(self, key: str, value: str, ttl: float) -> bool:
        if key.startswith("outbox:"):
            raise StoreError("the store is away")
        return super().set_if_absent(key, value, ttl)


class TestStoreAway:
    """A store that refuses the entry costs durability, never the delivery."""

    def test_delivered_from_memory_when_the_outbox_is_away(self) -> None:
        """The alert is delivered anyway, and the error is logged."""
        clock = ManualClock()
        hooks = AfterDelivery()
        with (
            capture_logs() as logs,
            make_runtime(
                Channels(scripted("hook", confirm)),
                hooks,
                clock=clock,
                store=FailingOutboxStore(clock),
                channels=("hook",),
                timeout=5.0,
                grouping=GROUPING_OFF,
            ) as runtime,
        ):
            report = runtime.send(make_alert())
        assert report.delivered
        assert hooks.delivered_to() == [("hook", None)]
        assert any("outbox unavailable" in entry["event"] for entry in logs)


class TestReports:
    """What callers see of a deferred delivery."""

    def test_alert_report_says_deferred(self) -> None:
        """A deferred delivery is neither delivered nor failed, and says until when."""
        clock = ManualClock()
        behaviour, _ = outcomes(Outcome.transient("HTTP 429", retry_after=120))
        with make_runtime(
            Channels(scripted("hook", behaviour)),
            clock=clock,
            channels=("hook",),
            timeout=5.0,
            grouping=GROUPING_OFF,
        ) as rt:
            report = rt.send(make_alert())
        (result,) = report.deliveries
        assert report.deferred
        assert not report.delivered
        assert (result.status, result.ok) == ("deferred", False)
        assert result.deferred_until == clock.now() + timedelta(seconds=120)

    @pytest.mark.parametrize("status", ["delivered", "failed", "deferred", "in_flight"])
    def test_status_is_one_of_four(self, status: str) -> None:
        """DeliveryResult.status takes the four values and no other."""
        result = _delivery.DeliveryResult(
            destination=Destination(channel="x"),
            outcome=Outcome.delivered() if status == "delivered" else Outcome.permanent("no"),
            attempts=1,
            status=status,
        )
        assert result.status.value == status
        with pytest.raises(ValueError, match="queued"):
            _delivery.DeliveryResult(
                destination=Destination(channel="x"),
                outcome=Outcome.delivered(),
                attempts=1,
                status="queued",
            )
