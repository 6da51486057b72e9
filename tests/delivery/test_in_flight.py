"""One slow part never delays another: deliveries run as tasks of the runtime, a caller
waits for them only as long as it says (``wait``), a destination that hangs holds only its
own send slots, and closing the runtime waits at most ``delivery.exit_grace``, leaving what
is still undelivered in the outbox (leases let go) for the next monitor, with no hook
called twice. Against real webhooks on loopback where timing matters; on a manual clock
where leases do.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
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
    SystemClock,
    _delivery,
)
from chaperone._event_codec import encode_event
from chaperone._gates import PER_DESTINATION, DeliveryGates
from chaperone._inflight import CANCEL_WAIT
from chaperone._outbox import LEASE_MARGIN, Outbox
from chaperone.store import MemoryStore, SQLiteStore
from chaperone.supervision import _keys
from helpers.cli import (
    STORE_FILE,
    clean_environ,
    finish_cli,
    require_fixture_plugins,
    run_cli,
    start_cli,
)
from helpers.delivery import (
    AfterDelivery,
    Channels,
    SlowWebhook,
    http_channel,
    make_alert,
    scripted,
    use_gates,
)
from helpers.report import report
from helpers.runtime import GROUPING_OFF, make_runtime

KEYS = ["job-0", "job-1", "job-2"]


def stuck(key: str) -> JobStuck:
    """A job-stuck event of job ``key`` (its alert's key)."""
    return JobStuck(
        supervision_id=key,
        job_class="App\\Jobs\\Import",
        stuck_duration=timedelta(minutes=5),
        last_heartbeat=None,
    )


def sqlite(path: Path, clock: Any) -> SQLiteStore:
    """A connection to the SQLite file ``path`` (one per simulated process)."""
    return SQLiteStore(path, clock, f"sqlite:///{path}")


def webhooks_runtime(
    path: Path, hanging: SlowWebhook, healthy: SlowWebhook, hooks: AfterDelivery, **delivery: Any
) -> Chaperone:
    """A runtime on the SQLite file ``path`` in real time, every alert going to channel
    ``slow`` (the ``hanging`` webhook) and channel ``fine`` (the ``healthy`` one).
    """
    clock = SystemClock()
    return make_runtime(
        Channels(http_channel("slow"), http_channel("fine")),
        hooks,
        clock=clock,
        store=sqlite(path, clock),
        channels=("slow", "fine"),
        channel_sections={"slow": {"url": hanging.url}, "fine": {"url": healthy.url}},
        grouping=GROUPING_OFF,
        **{"timeout": 5.0, **delivery},
    )


class Blocked:
    """A channel behaviour whose sends wait until :meth:`open` (in real time), counting
    the sends in progress at once and the alerts it confirmed.
    """

    def __init__(self) -> None:
        self._opened = False
        self._events: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        self._lock = threading.Lock()
        self.sending = 0
        self.most_at_once = 0
        self.started: list[str] = []
        self.confirmed: list[str] = []

    def open(self) -> None:
        """Let every send through, now and later."""
        with self._lock:
            self._opened = True
            for loop, event in self._events:
                loop.call_soon_threadsafe(event.set)

    def _gate(self) -> asyncio.Event:
        """An event of the running loop, set once the sends may go through."""
        event = asyncio.Event()
        with self._lock:
            self._events.append((asyncio.get_running_loop(), event))
            if self._opened:
                event.set()
        return event

    async def __call__(self, alert: Alert, context: SendContext) -> Outcome:
        with self._lock:
            self.started.append(alert.key)
            self.sending += 1
            self.most_at_once = max(self.most_at_once, self.sending)
        try:
            await self._gate().wait()
        finally:
            with self._lock:
                self.sending -= 1
        with self._lock:
            self.confirmed.append(alert.key)
        return Outcome.delivered("ok")

    def wait_started(self, count: int, timeout: float = 10.0) -> bool:
        """Wait until ``count`` sends have started (at most ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.started) >= count:
                return True
            time.sleep(0.005)
        return False


class Router:
    """Routes an alert to the channel its key starts with (``busy-3`` to ``busy``)."""

    @chaperone.hookimpl
    def chaperone_route(self, alert: Alert) -> Sequence[Destination]:
        return [Destination(channel=alert.key.split("-")[0])]


class Away:
    """Mixed into a store: it refuses every outbox write while ``away`` is set."""

    away = True

    def _refuse(self, key: str) -> None:
        if self.away and key.startswith("outbox:"):
            raise StoreError("the store is away")

    def set_if_absent(self, key: str, value: str, ttl: float) -> bool:
        self._refuse(key)
        return super().set_if_absent(key, value, ttl)

    def set(self, key: str, value: str, ttl: float | None = None) -> None:
        self._refuse(key)
        super().set(key, value, ttl)

    def schedule(self, key: str, member: str, at: float) -> None:
        self._refuse(key)
        super().schedule(key, member, at)


class MemoryAway(Away, MemoryStore):
    """A memory store that is away for the outbox."""


class SQLiteAway(Away, SQLiteStore):
    """A SQLite store that is away for the outbox until told otherwise."""


@pytest.fixture
def hanging() -> Iterator[SlowWebhook]:
    """A webhook that holds every request a minute (until told otherwise)."""
    with SlowWebhook(hang=60) as webhook:
        yield webhook


@pytest.fixture
def healthy() -> Iterator[SlowWebhook]:
    """A webhook that answers 200 at once."""
    with SlowWebhook() as webhook:
        yield webhook


class TestDispatchWithoutWaiting:
    """``wait=0`` returns once the entries are written; a hanging webhook delays neither
    the healthy one nor the next event."""

    def test_the_healthy_webhook_gets_each_alert_at_once(
        self, tmp_path: Path, hanging: SlowWebhook, healthy: SlowWebhook
    ) -> None:
        """Three dispatches with ``wait=0`` beside a webhook that never answers: each
        returns well under a second, reports both deliveries in flight, and its alert
        reaches the healthy webhook well under a second after it was dispatched. The
        hanging webhook gets each alert exactly ``max_attempts`` times, each attempt cut
        at the timeout, and the failure hook is called once per alert when they end.
        """
        hooks = AfterDelivery()
        returned: list[float] = []
        reached: list[float] = []
        with webhooks_runtime(
            tmp_path / "c.db", hanging, healthy, hooks, timeout=1.0, max_attempts=2, max_backoff=0.2
        ) as runtime:
            first = time.monotonic()
            for number, key in enumerate(KEYS):
                started = time.monotonic()
                dispatched = runtime.dispatch(stuck(key), wait=0)
                returned.append(time.monotonic() - started)
                (alert,) = dispatched.alerts
                assert alert.in_flight
                assert not alert.delivered
                assert [(r.destination.channel, r.status) for r in alert.deliveries] == [
                    ("slow", "in_flight"),
                    ("fine", "in_flight"),
                ]
                assert healthy.wait_for(lambda n=number: len(healthy.answered()) > n, timeout=5)
                arrival = next(item.at for item in healthy.received if item.key == key)
                reached.append(arrival - started)
            assert runtime.wait_for_deliveries(timeout=20) == 0
            ended = time.monotonic() - first
        report(
            "hanging webhook beside a healthy one, wait=0: dispatch returned in "
            f"{', '.join(f'{s * 1000:.0f} ms' for s in returned)}; healthy webhook reached "
            f"after {', '.join(f'{s * 1000:.0f} ms' for s in reached)}; hanging deliveries "
            f"failed for good after {ended:.1f}s"
        )
        assert max(returned) < 0.5
        assert max(reached) < 0.8
        # ... and the hanging one, failing, was told on the healthy one (its degraded alert).
        assert healthy.answered() == Counter({**dict.fromkeys(KEYS, 1), "channel:slow": 1})
        assert Counter(item.key for item in hanging.received) == Counter(dict.fromkeys(KEYS, 2))
        assert not any(item.answered for item in hanging.received)
        assert sorted(hooks.failed_at()) == [("slow", 2)] * 3
        assert all(outcome.detail == "timed out after 1s" for _, _, outcome, _ in hooks.failed)
        assert sorted(hooks.delivered_to()) == [("fine", None)] * 3
        # Two attempts of 1 s and a backoff of 0.2 s each, all three alerts at once.
        assert ended < 2 * 1.0 + 0.2 + 2.0

    def test_a_tick_without_waiting_goes_on_with_the_next(self) -> None:
        """``Monitor.tick(wait=0)`` with a channel that does not answer returns at once,
        its delivery in flight; the next tick's event reaches the other channel, and the
        first delivery ends (its hook called) when the channel answers.
        """
        blocked = Blocked()
        hooks = AfterDelivery()

        class Detector:
            """Reports one event per tick, of the given keys in turn."""

            def __init__(self) -> None:
                self.keys = ["busy-1", "quick-2"]

            @chaperone.hookimpl
            def chaperone_detect(self) -> list[JobStuck]:
                return [stuck(self.keys.pop(0))] if self.keys else []

        quick: list[str] = []

        async def confirm_quick(alert: Alert, context: SendContext) -> Outcome:
            quick.append(alert.key)
            return Outcome.delivered("ok")

        with make_runtime(
            Channels(scripted("busy", blocked), scripted("quick", confirm_quick)),
            Router(),
            Detector(),
            hooks,
            channels=("busy",),
            timeout=30,
            grouping=GROUPING_OFF,
        ) as runtime:
            monitor = Monitor(runtime, vouch_for=None)
            (first,) = monitor.tick(wait=0)
            assert blocked.wait_started(1)
            (second,) = monitor.tick(wait=2)
            assert [r.status for a in first.alerts for r in a.deliveries] == ["in_flight"]
            assert [r.status for a in second.alerts for r in a.deliveries] == ["delivered"]
            assert quick == ["quick-2"]
            assert hooks.delivered_to() == [("quick", None)]
            blocked.open()
            assert runtime.wait_for_deliveries(timeout=10) == 0
        assert sorted(hooks.delivered_to()) == [("busy", None), ("quick", None)]

    def test_adispatch_all_from_another_loop_returns_without_waiting(self) -> None:
        """The async twin, awaited on the caller's own event loop with ``wait=0``, returns
        with the delivery in flight; awaiting more of it later is not needed for the
        delivery to end.
        """
        blocked = Blocked()
        with make_runtime(
            Channels(scripted("busy", blocked)),
            channels=("busy",),
            timeout=5.0,
            grouping=GROUPING_OFF,
        ) as runtime:

            async def caller() -> list[chaperone.DispatchReport]:
                return await runtime.adispatch_all([stuck("busy-1")], drain=False, wait=0)

            (report_,) = asyncio.run(caller())
            assert report_.alerts[0].in_flight
            blocked.open()
            assert runtime.wait_for_deliveries(timeout=10) == 0
            assert blocked.confirmed == ["busy-1"]
            assert runtime.outbox.entries() == []


class TestFairness:
    """A destination with many entries, or one that hangs, holds only its own slots."""

    def test_a_busy_destination_does_not_hold_another(self) -> None:
        """A hundred alerts to a destination whose sends hang, sent one batch each: it has
        exactly its own slots in progress and the rest waiting; five alerts sent after them
        to another destination are delivered meanwhile. Once the first answers, all its
        hundred are delivered, each once, never more at once than its slots.
        """
        busy = Blocked()
        quick = Blocked()
        quick.open()
        hooks = AfterDelivery()
        with make_runtime(
            Channels(scripted("busy", busy), scripted("quick", quick)),
            Router(),
            hooks,
            timeout=60,
            grouping=GROUPING_OFF,
        ) as runtime:
            for number in range(100):
                runtime.send(make_alert(f"busy-{number}"), wait=0)
            assert busy.wait_started(PER_DESTINATION)
            for number in range(5):
                runtime.send(make_alert(f"quick-{number}"), wait=0)
            deadline = time.monotonic() + 10
            while len(quick.confirmed) < 5 and time.monotonic() < deadline:
                time.sleep(0.005)
            assert sorted(quick.confirmed) == [f"quick-{number}" for number in range(5)]
            assert busy.sending == PER_DESTINATION
            assert len(busy.started) == PER_DESTINATION
            assert busy.confirmed == []
            busy.open()
            assert runtime.wait_for_deliveries(timeout=30) == 0
        assert Counter(busy.confirmed) == Counter(f"busy-{number}" for number in range(100))
        assert busy.most_at_once == PER_DESTINATION
        assert len(hooks.delivered) == 105

    def test_the_total_is_shared_in_turn(self) -> None:
        """With three send slots in all and two per destination, two destinations that
        hang take two slots and one; a third destination's alert waits for a slot and is
        sent as soon as one is free, before the hanging ones' waiting alerts.
        """
        first, second, third = Blocked(), Blocked(), Blocked()
        third.open()
        with make_runtime(
            Channels(scripted("one", first), scripted("two", second), scripted("three", third)),
            Router(),
            timeout=60,
            grouping=GROUPING_OFF,
        ) as runtime:
            use_gates(runtime, DeliveryGates(per_destination=2, total=3))
            for number in range(4):
                runtime.send(make_alert(f"one-{number}"), wait=0)
            assert first.wait_started(2)
            for number in range(4):
                runtime.send(make_alert(f"two-{number}"), wait=0)
            assert second.wait_started(1)
            runtime.send(make_alert("three-0"), wait=0)
            assert (len(first.started), len(second.started), third.started) == (2, 1, [])
            first.open()
            assert third.wait_started(1)
            second.open()
            assert runtime.wait_for_deliveries(timeout=10) == 0
        assert (len(first.confirmed), len(second.confirmed), third.confirmed) == (4, 4, ["three-0"])


class TestBoundedExit:
    """``close()`` waits at most the exit grace; what is left stays in the outbox."""

    def test_close_leaves_the_hanging_deliveries_in_the_outbox(
        self, tmp_path: Path, hanging: SlowWebhook, healthy: SlowWebhook
    ) -> None:
        """Three alerts whose hanging deliveries outlast the exit grace: ``close()``
        returns within the grace and a little, with no hook called for them and one
        warning naming the count and the channel; their entries stay in the outbox with
        the attempt made counted, due at once. A runtime started afterwards on the same
        file delivers each once, at once (the leases were let go), when the webhook
        answers again.
        """
        hooks = AfterDelivery()
        path = tmp_path / "c.db"
        grace = 1.0
        with capture_logs() as logs:
            runtime = webhooks_runtime(
                path, hanging, healthy, hooks, timeout=30, max_attempts=3, exit_grace=grace
            )
            for key in KEYS:
                runtime.dispatch(stuck(key), wait=0)
            assert hanging.wait_for(lambda: hanging.arrived() == 3, timeout=10)
            assert healthy.wait_for(lambda: len(healthy.answered()) == 3, timeout=10)
            started = time.monotonic()
            runtime.close()
            closed_in = time.monotonic() - started
        report(f"runtime.close() with three deliveries hanging: {closed_in:.2f}s (grace {grace}s)")
        assert grace <= closed_in < grace + 1.0
        assert hooks.failed == []
        assert sorted(hooks.delivered_to()) == [("fine", None)] * 3
        (left,) = [
            entry for entry in logs if entry["log_level"] == "warning" and "exit" in entry["event"]
        ]
        assert (left["count"], left["channels"]) == (3, ["slow"])
        assert not [entry for entry in logs if entry["log_level"] == "error"]

        clock = SystemClock()
        store = sqlite(path, clock)
        try:
            entries = Outbox(store, clock).entries()
        finally:
            store.close()
        assert sorted(entry.alert.key for entry, _due in entries) == KEYS
        assert {entry.destination.channel for entry, _due in entries} == {"slow"}
        assert {entry.attempts for entry, _due in entries} == {1}
        assert all(due <= clock.timestamp() for _entry, due in entries)

        hanging.hang = 0
        heir_hooks = AfterDelivery()
        with webhooks_runtime(path, hanging, healthy, heir_hooks, timeout=30) as heir:
            drained = heir.drain_outbox()
            assert heir.drain_outbox() == []
            assert heir.outbox.entries() == []
        assert [(result.status, result.attempts) for result in drained] == [("delivered", 2)] * 3
        assert hanging.answered() == Counter(dict.fromkeys(KEYS, 1))
        assert healthy.answered() == Counter(dict.fromkeys(KEYS, 1))
        assert heir_hooks.delivered_to() == [("slow", None)] * 3

    def test_what_the_store_refused_is_logged_as_lost(self) -> None:
        """An alert the store refused (held in memory only) and still in flight at exit is
        logged at error, with its channel and alert, and no hook is called for it. The
        degraded alert the refusal raised (part ``outbox``) waits behind it, lost too.
        """
        blocked = Blocked()
        hooks = AfterDelivery()
        clock = ManualClock()
        with capture_logs() as logs:
            runtime = make_runtime(
                Channels(scripted("busy", blocked)),
                hooks,
                clock=clock,
                store=MemoryAway(clock),
                channels=("busy",),
                exit_grace=0.1,
                timeout=5.0,
                grouping=GROUPING_OFF,
            )
            runtime.send(make_alert("busy-1"), wait=0)
            assert blocked.wait_started(1)
            runtime.close()
        (lost,) = [entry for entry in logs if "lost" in entry["event"]]
        assert lost["log_level"] == "error"
        assert (lost["count"], lost["channels"], sorted(lost["alerts"])) == (
            2,
            ["busy"],
            ["chaperone_degraded:outbox", "job_stuck:busy-1"],
        )
        assert hooks.delivered == []
        assert hooks.failed == []

    def test_what_the_store_refused_is_written_when_it_is_back(self, tmp_path: Path) -> None:
        """An alert delivered from memory while the store was away, still in flight at
        exit when the store is back, is written to the outbox, due at once: left for the
        next monitor, not lost; so is the degraded alert (part ``outbox``) it raised.
        """
        blocked = Blocked()
        clock = ManualClock()
        path = tmp_path / "c.db"
        store = SQLiteAway(path, clock, f"sqlite:///{path}")
        with capture_logs() as logs:
            runtime = make_runtime(
                Channels(scripted("busy", blocked)),
                clock=clock,
                store=store,
                channels=("busy",),
                exit_grace=0.1,
                timeout=5.0,
                grouping=GROUPING_OFF,
            )
            runtime.send(make_alert("busy-1"), wait=0)
            assert blocked.wait_started(1)
            store.away = False
            runtime.close()
        reopened = sqlite(path, clock)
        try:
            entries = Outbox(reopened, clock).entries()
        finally:
            reopened.close()
        assert sorted((entry.alert.key, entry.attempts, due) for entry, due in entries) == [
            ("busy-1", 1, clock.timestamp()),
            ("outbox", 1, clock.timestamp()),
        ]
        assert not [entry for entry in logs if "lost" in entry["event"]]
        assert [entry["count"] for entry in logs if "in flight at exit" in entry["event"]] == [2]

    def test_close_without_deliveries_in_flight_does_not_wait(self) -> None:
        """Nothing in flight: ``close()`` does not wait for the grace."""
        with make_runtime(
            channels=("log",), exit_grace=30, timeout=5.0, grouping=GROUPING_OFF
        ) as runtime:
            runtime.send(make_alert())
            started = time.monotonic()
        assert time.monotonic() - started < 5
        assert CANCEL_WAIT < 30


class TestNoDoubleClaim:
    """An entry being delivered is never claimed by a drain, here or elsewhere."""

    def test_a_drain_leaves_an_entry_in_flight_alone(self, tmp_path: Path) -> None:
        """An alert whose send hangs past its lease on the clock: neither a drain nor a
        monitor tick of the same runtime claims it; it is sent once, and its hook called
        once, when the channel answers.
        """
        clock = ManualClock()
        blocked = Blocked()
        hooks = AfterDelivery()
        with make_runtime(
            Channels(scripted("busy", blocked)),
            hooks,
            clock=clock,
            store=sqlite(tmp_path / "c.db", clock),
            channels=("busy",),
            timeout=30,
            grouping=GROUPING_OFF,
        ) as runtime:
            runtime.send(make_alert("busy-1"), wait=0)
            assert blocked.wait_started(1)
            clock.advance(10 * (30 + LEASE_MARGIN))
            assert runtime.drain_outbox(wait=0) == []
            assert Monitor(runtime, vouch_for=None).tick(wait=0) == []
            blocked.open()
            assert runtime.wait_for_deliveries(timeout=10) == 0
            assert runtime.drain_outbox() == []
            assert runtime.outbox.entries() == []
        assert blocked.started == ["busy-1"]
        assert hooks.delivered_to() == [("busy", None)]

    def test_an_entry_waiting_for_a_slot_keeps_its_lease(self, tmp_path: Path) -> None:
        """One send slot, held by a send that hangs; a second alert waits for it. As the
        clock passes the leases they were written with, the waiting alert's lease is
        renewed: another process then claims the first (whose send outlasted its lease
        only on this clock) but not the waiting one.
        """
        clock = ManualClock()
        blocked = Blocked()
        path = tmp_path / "c.db"
        lease = 30 + LEASE_MARGIN
        with make_runtime(
            Channels(scripted("busy", blocked)),
            clock=clock,
            store=sqlite(path, clock),
            channels=("busy",),
            timeout=30,
            grouping=GROUPING_OFF,
        ) as runtime:
            use_gates(runtime, DeliveryGates(per_destination=1))
            runtime.send(make_alert("busy-1"), wait=0)
            assert blocked.wait_started(1)
            runtime.send(make_alert("busy-2"), wait=0)
            written = {entry.alert.key: due for entry, due in runtime.outbox.entries()}
            clock.advance(0.75 * lease)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                due = {entry.alert.key: due for entry, due in runtime.outbox.entries()}
                if due["busy-2"] > written["busy-2"]:
                    break
                time.sleep(0.05)
            assert due["busy-2"] > written["busy-2"], "the waiting entry's lease was not kept"
            clock.advance(0.5 * lease)
            other = sqlite(path, clock)
            try:
                claimed = Outbox(other, clock).claim_due(10, lease=lease)
            finally:
                other.close()
            assert [claim.entry.alert.key for claim in claimed] == ["busy-1"]
            assert blocked.started == ["busy-1"]
            blocked.open()
            assert runtime.wait_for_deliveries(timeout=10) == 0


class TestMonitorExit:
    """``chaperone monitor`` with a webhook that never answers: it ends within its exit
    grace, leaving the alert in the outbox."""

    GRACE = 1.0

    def environ(self, folder: Path, webhook: SlowWebhook) -> dict[str, str]:
        """The environment of a monitor delivering to ``webhook``, with one job-stuck
        event queued in its store.
        """
        require_fixture_plugins()
        env = clean_environ(
            folder,
            CHAPERONE_ALERT_CHANNELS="webhook",
            CHAPERONE_WEBHOOK_URL=webhook.url,
            CHAPERONE_ALERT_GROUPING="false",
            CHAPERONE_DELIVERY_TIMEOUT="30",
            CHAPERONE_DELIVERY_EXIT_GRACE=str(self.GRACE),
            CHAPERONE_LOG_LEVEL="error",
        )
        clock = SystemClock()
        store = sqlite(folder / STORE_FILE, clock)
        try:
            store.push(_keys.EVENTS_QUEUE, encode_event(stuck("job-0")))
        finally:
            store.close()
        return env

    def left_in_the_outbox(self, folder: Path) -> list[tuple[str, int]]:
        """The alert keys and attempts of the entries in the store's outbox."""
        clock = SystemClock()
        store = sqlite(folder / STORE_FILE, clock)
        try:
            return [
                (entry.alert.key, entry.attempts) for entry, _ in Outbox(store, clock).entries()
            ]
        finally:
            store.close()

    def test_sigterm_ends_the_monitor_within_its_grace(
        self, tmp_path: Path, hanging: SlowWebhook
    ) -> None:
        """SIGTERM while the webhook holds the alert's request: the monitor exits 0 within
        the grace and a little (not after the 30 s send timeout), and the alert waits in
        the outbox with its attempt counted.
        """
        env = self.environ(tmp_path, hanging)
        args = ("monitor", "--interval", "0.2")
        process = start_cli(args, cwd=tmp_path, env=env)
        try:
            assert hanging.wait_for(lambda: hanging.arrived() >= 1, timeout=30)
        finally:
            process.send_signal(signal.SIGTERM)
            stopping = time.monotonic()
            result = finish_cli(process, args)
        stopped_in = time.monotonic() - stopping
        report(f"chaperone monitor, SIGTERM with a delivery hanging: exited in {stopped_in:.2f}s")
        assert result.returncode == 0, result.stderr
        assert stopped_in < self.GRACE + CANCEL_WAIT + 2.0
        assert self.left_in_the_outbox(tmp_path) == [("job-0", 1)]

    def test_once_waits_at_most_its_grace(self, tmp_path: Path, hanging: SlowWebhook) -> None:
        """``chaperone monitor --once`` with the webhook hanging: it ends within the grace
        (past starting up), not after the send timeout, and leaves the alert in the outbox.
        """
        env = self.environ(tmp_path, hanging)
        started = time.monotonic()
        result = run_cli("monitor", "--once", cwd=tmp_path, env=env)
        ran_for = time.monotonic() - started
        report(f"chaperone monitor --once with a delivery hanging: {ran_for:.2f}s")
        assert result.returncode == 0, result.stderr
        assert "1 event(s), 1 alert(s)" in result.stdout
        assert hanging.arrived() == 1
        assert ran_for < 15  # the send timeout is 30 s, three attempts
        assert self.left_in_the_outbox(tmp_path) == [("job-0", 1)]


class TestDrainLimit:
    """A drain adds no deliveries past the runtime's limit of deliveries in flight."""

    def test_a_drain_claims_nothing_past_the_limit(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """With a limit of two in flight and three entries due whose sends hang, a drain
        claims two; the third waits in the outbox, and the drain after the first two
        ended delivers it.
        """
        monkeypatch.setattr(_delivery, "MAX_IN_FLIGHT", 2)
        clock = ManualClock()
        blocked = Blocked()
        with make_runtime(
            Channels(scripted("busy", blocked)),
            clock=clock,
            store=sqlite(tmp_path / "c.db", clock),
            channels=("busy",),
            timeout=30,
            grouping=GROUPING_OFF,
        ) as runtime:
            for key in ("busy-1", "busy-2", "busy-3"):
                (claim,) = _delivery.enqueue(
                    runtime.dispatcher.delivery, make_alert(key), [Destination(channel="busy")]
                )
                runtime.outbox.reschedule(claim, claim.entry, clock.timestamp())
            first = runtime.drain_outbox(wait=0)
            assert [result.status for result in first] == ["in_flight"] * 2
            assert runtime.drain_outbox(wait=0) == []
            blocked.open()
            assert runtime.wait_for_deliveries(timeout=10) == 0
            (last,) = runtime.drain_outbox()
            assert last.ok
            assert runtime.outbox.entries() == []
        assert sorted(blocked.confirmed) == ["busy-1", "busy-2", "busy-3"]
