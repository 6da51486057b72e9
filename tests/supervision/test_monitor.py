"""The monitor: runs every ``chaperone_detect`` implementation on each tick and dispatches
what they find; the queue detector hands on events that job processes queued.

Runtimes are real (built-in plugins, the database channel keeping the history) on a
memory store or a SQLite file; time moves through a ManualClock.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

from chaperone import (
    Chaperone,
    Event,
    JobStuck,
    ManualClock,
    Runtime,
    ThresholdCleared,
    ThresholdMetric,
    hookimpl,
)
from chaperone._event_codec import encode_event
from chaperone._monitor import Monitor
from chaperone.builtin import queued_events as queue_detector
from chaperone.builtin.database_channel import read_history
from chaperone.store import MemoryStore
from chaperone.supervision import Supervisor, _keys, supervise
from chaperone.testing import capture_all_logs
from helpers.fatigue import sqlite_store
from helpers.runtime import GROUPING_OFF, make_runtime

START = datetime(2024, 1, 15, 10, 0, tzinfo=UTC)


def stuck(supervision_id: str) -> JobStuck:
    """A JobStuck event for ``supervision_id``."""
    return JobStuck(
        supervision_id=supervision_id,
        job_class="queued.job",
        stuck_duration=timedelta(minutes=3),
        occurred_at=START,
    )


@pytest.fixture
def clock() -> ManualClock:
    """A clock that moves only when told."""
    return ManualClock(START)


class Raising:
    """A detector plugin that always raises."""

    calls = 0

    @hookimpl
    def chaperone_detect(self, runtime: Runtime, now: datetime) -> list[Event]:
        """Fail."""
        Raising.calls += 1
        raise RuntimeError("detector broke")


class Odd:
    """A detector plugin returning one bare event, with junk around it next time."""

    def __init__(self) -> None:
        self.calls = 0

    @hookimpl
    def chaperone_detect(self, now: datetime) -> Any:
        """Return a bare event, then a list with junk, then None."""
        self.calls += 1
        cleared = ThresholdCleared(
            metric=ThresholdMetric.QUEUE_LENGTH, subject=f"q{self.calls}", value=0, threshold=5
        )
        return (
            [cleared, "not an event", None, 42]
            if self.calls == 2
            else (cleared if self.calls == 1 else None)
        )


@attrs.frozen(kw_only=True)
class Fussy(Event):
    """A plugin event whose own validation raises something other than ValueError."""

    name: str = attrs.field()

    @name.validator
    def _check(self, _attribute: attrs.Attribute[str], value: str) -> None:
        if value == "explode":
            raise RuntimeError("a plugin's validator failing its own way")


class TestTick:
    """One tick: detect with every detector, dispatch each event."""

    def test_a_stuck_job_is_dispatched_and_delivered(
        self, runtime: Chaperone, clock: ManualClock
    ) -> None:
        """A job at its heartbeat deadline gives one report with a delivered
        job_stuck alert; the next tick finds nothing new."""
        with supervise(
            "watched", heartbeat_interval=1, supervisor=Supervisor(runtime.store, clock)
        ) as job:
            deadline = job.record.stuck_deadline
            assert deadline is not None
            clock.advance(deadline - clock.timestamp())
            monitor = Monitor(runtime)
            (report,) = monitor.tick()
            again = monitor.tick()
        assert isinstance(report.event, JobStuck)
        assert report.event.supervision_id == job.supervision_id
        (alert,) = report.alerts
        assert alert.delivered
        assert alert.alert.type == "job_stuck"
        assert again == []

    def test_a_raising_detector_costs_only_itself(self, clock: ManualClock, tmp_path: Path) -> None:
        """A detector plugin that raises is logged and skipped; the built-in ones still
        find the stuck job."""
        store = sqlite_store(tmp_path / "c.db", clock)
        Raising.calls = 0
        with (
            make_runtime(
                ("raising", Raising()),
                store=store,
                clock=clock,
                channels=("database",),
                grouping=GROUPING_OFF,
            ) as runtime,
            supervise("j", heartbeat_interval=1, supervisor=Supervisor(store, clock)),
        ):
            clock.advance(5)
            with capture_all_logs() as logs:
                reports = Monitor(runtime).tick()
        assert Raising.calls == 1
        assert [type(r.event) for r in reports] == [JobStuck]
        assert any("detector broke" in str(entry.get("error")) for entry in logs)

    def test_odd_detector_results_are_taken_as_far_as_they_are_events(
        self, clock: ManualClock, tmp_path: Path
    ) -> None:
        """A bare event counts as one; junk in a list is ignored; None is nothing."""
        odd = Odd()
        with make_runtime(
            ("odd", odd),
            store=MemoryStore(clock),
            clock=clock,
            channels=("database",),
            grouping=GROUPING_OFF,
        ) as runtime:
            monitor = Monitor(runtime)
            found = [monitor.detect() for _ in range(3)]
        subjects = [[getattr(e, "subject", None) for e in events] for events in found]
        assert subjects == [["q1"], ["q2"], []]

    def test_a_tick_never_raises(self, runtime: Chaperone, monkeypatch: pytest.MonkeyPatch) -> None:
        """When detection itself fails, the tick logs it and returns no reports."""

        class Broken:
            def detect(self, now: datetime) -> Any:
                raise OSError("plugin manager gone")

        monkeypatch.setattr(runtime, "hooks", Broken())
        with capture_all_logs() as logs:
            assert Monitor(runtime).tick() == []
        assert any("plugin manager gone" in str(entry.get("error")) for entry in logs)


class TestRun:
    """The loop: tick, wait, until told to stop."""

    def test_runs_until_stopped(self, clock: ManualClock) -> None:
        """The loop ticks until its stop event is set, and says how many ticks ran."""
        stop = threading.Event()

        class StopAfterThree:
            ticks = 0

            @hookimpl
            def chaperone_detect(self) -> None:
                self.ticks += 1
                if self.ticks == 3:
                    stop.set()

        counter = StopAfterThree()
        with make_runtime(
            ("stopper", counter),
            store=MemoryStore(clock),
            clock=clock,
            channels=("database",),
            grouping=GROUPING_OFF,
        ) as runtime:
            ticks = Monitor(runtime).run(0.001, stop)
        assert ticks == 3
        assert counter.ticks == 3

    def test_a_set_stop_event_means_no_tick(self, clock: ManualClock) -> None:
        """A loop asked to stop before it started does not tick."""
        stop = threading.Event()
        stop.set()
        with make_runtime(
            store=MemoryStore(clock), clock=clock, channels=("database",), grouping=GROUPING_OFF
        ) as runtime:
            assert Monitor(runtime).run(10, stop) == 0

    def test_stops_from_another_thread(self, clock: ManualClock) -> None:
        """A stop set from another thread ends a loop waiting out a long interval."""
        stop = threading.Event()
        with make_runtime(
            store=MemoryStore(clock), clock=clock, channels=("database",), grouping=GROUPING_OFF
        ) as runtime:
            timer = threading.Timer(0.2, stop.set)
            timer.start()
            result: list[int] = []
            thread = threading.Thread(target=lambda: result.append(Monitor(runtime).run(60, stop)))
            thread.start()
            thread.join(timeout=10)
            timer.cancel()
        assert not thread.is_alive()
        assert result == [1]


class TestQueuedEvents:
    """Events job processes queue are dispatched by a monitor, once."""

    def test_queued_events_are_delivered_once_across_monitors(
        self, clock: ManualClock, tmp_path: Path
    ) -> None:
        """Events queued through one connection are delivered by whichever of two
        monitors pops them, each once."""
        path = tmp_path / "c.db"
        producer = Supervisor(sqlite_store(path, clock), clock)
        try:
            with (
                make_runtime(
                    store=sqlite_store(path, clock),
                    clock=clock,
                    channels=("database",),
                    grouping=GROUPING_OFF,
                ) as first,
                make_runtime(
                    store=sqlite_store(path, clock),
                    clock=clock,
                    channels=("database",),
                    grouping=GROUPING_OFF,
                ) as second,
            ):
                for index in range(30):
                    producer.emit(stuck(f"job-{index}"))
                delivered = [r for m in (first, second, first) for r in Monitor(m).tick()]
                history = read_history(first.store, 1000)
        finally:
            producer.store.close()
        keys = sorted(report.event.supervision_id for report in delivered)  # type: ignore[attr-defined]
        assert keys == sorted(f"job-{index}" for index in range(30))
        assert sorted(record["key"] for record in history) == keys

    def test_unreadable_records_are_dropped_and_the_rest_delivered(
        self, runtime: Chaperone
    ) -> None:
        """Records that are not events (garbage, a wrong shape, an unknown class, a
        plugin event failing its own validation) are logged and dropped; the events
        around them in the same batch are still delivered."""
        runtime.plugins.event_classes.register(Fussy, "fussy-events")
        store = runtime.store
        store.push(_keys.EVENTS_QUEUE, encode_event(stuck("before")))
        for bad in (
            "garbage",
            "[]",
            '{"event": "Nope", "fields": {}}',
            encode_event(Fussy(name="fine")).replace('"fine"', '"explode"'),
        ):
            store.push(_keys.EVENTS_QUEUE, bad)
        store.push(_keys.EVENTS_QUEUE, encode_event(stuck("after")))
        with capture_all_logs() as logs:
            reports = Monitor(runtime).tick()
        ids = [getattr(report.event, "supervision_id", None) for report in reports]
        assert ids == ["before", "after"]
        dropped = [e for e in logs if e["event"] == "dropped an unreadable queued event"]
        assert len(dropped) == 4
        assert store.pop(_keys.EVENTS_QUEUE, 100) == []

    def test_a_long_queue_drains_over_ticks(self, clock: ManualClock) -> None:
        """More events than one batch are taken over several ticks, none lost."""
        store = MemoryStore(clock)
        count = queue_detector.BATCH * 2 + 7
        for index in range(count):
            store.push(_keys.EVENTS_QUEUE, encode_event(stuck(f"j{index}")))
        with make_runtime(
            store=store, clock=clock, channels=("database",), grouping=GROUPING_OFF
        ) as runtime:
            monitor = Monitor(runtime)
            sizes = [len(monitor.detect()) for _ in range(4)]
        assert sizes == [queue_detector.BATCH, queue_detector.BATCH, 7, 0]
