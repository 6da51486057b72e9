"""Every monitor that vouches for the store leaves a beat there on each tick, with the
tick's detection error; a detector that raises makes ``detection`` a degraded part until
a tick detects cleanly.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

import chaperone
from chaperone import (
    Alert,
    Chaperone,
    ManualClock,
    Monitor,
    Outcome,
    Runtime,
    SendContext,
    StoreError,
)
from chaperone.metrics._liveness import beat_ttl, read_beats, read_degraded
from chaperone.store import MemoryStore, ResilientStore, StoreState
from helpers.delivery import Channels, scripted
from helpers.runtime import GROUPING_OFF, make_runtime


class FlakyDetector:
    """A detector plugin that raises while ``broken`` is set."""

    def __init__(self) -> None:
        self.broken = False

    @chaperone.hookimpl
    def chaperone_detect(self, runtime: Runtime, now: datetime) -> None:
        if self.broken:
            raise RuntimeError("the detector's database is gone")


@pytest.fixture
def clock() -> ManualClock:
    """A clock that moves only when told."""
    return ManualClock()


@pytest.fixture
def received() -> list[Alert]:
    """What the "pager" channel received."""
    return []


@pytest.fixture
def detector() -> FlakyDetector:
    """A detector that can be broken."""
    return FlakyDetector()


@pytest.fixture
def runtime(
    clock: ManualClock, received: list[Alert], detector: FlakyDetector
) -> Iterator[Chaperone]:
    """A runtime with the flaky detector, sending to "pager"."""

    async def keep(alert: Alert, context: SendContext) -> Outcome:
        received.append(alert)
        return Outcome.delivered("ok")

    with make_runtime(
        Channels(scripted("pager", keep)),
        detector,
        clock=clock,
        channels=("pager",),
        timeout=5.0,
        grouping=GROUPING_OFF,
    ) as made:
        yield made


class TestBeats:
    """What a monitor tells health about itself."""

    def test_each_tick_leaves_a_beat(self, runtime: Chaperone, clock: ManualClock) -> None:
        """The beat names the monitor and its interval, and moves with each tick; it
        expires after beat_ttl of the interval."""
        monitor = Monitor(runtime, interval=2.0)
        monitor.tick()
        [first] = read_beats(runtime.store)
        assert (first.monitor, first.interval, first.error) == (monitor.id, 2.0, None)
        assert first.ticked_at == clock.timestamp()
        clock.advance(2)
        monitor.tick()
        [second] = read_beats(runtime.store)
        assert second.ticked_at == first.ticked_at + 2
        clock.advance(beat_ttl(2.0) + 1)
        assert read_beats(runtime.store) == []

    def test_a_monitor_that_stops_soon_leaves_none(self, runtime: Chaperone) -> None:
        """The monitor inside ``chaperone run`` (vouch_for=None) writes no beat."""
        Monitor(runtime, vouch_for=None).tick()
        assert read_beats(runtime.store) == []


class TestDetectionErrors:
    """A detector that raises is a degraded part of Chaperone."""

    def test_a_raising_detector_is_alerted_and_resolved(
        self,
        runtime: Chaperone,
        detector: FlakyDetector,
        received: list[Alert],
    ) -> None:
        """Broken: the beat carries the error, ``detection`` is recorded as degraded and
        alerted once over two ticks. Mended: the next tick clears all three."""
        monitor = Monitor(runtime)
        detector.broken = True
        monitor.tick()
        monitor.tick()
        [beat] = read_beats(runtime.store)
        assert beat.error is not None
        assert "the detector's database is gone" in beat.error
        assert [r.part for r in read_degraded(runtime.store)] == ["detection"]
        detector.broken = False
        monitor.tick()
        assert runtime.self_watch.wait(10) == 0
        assert read_beats(runtime.store)[0].error is None
        assert read_degraded(runtime.store) == []
        assert [(a.key, a.status.value) for a in received] == [
            ("detection", "firing"),
            ("detection", "resolved"),
        ]


class AwayStore:
    """A memory store whose every call raises StoreError while ``away`` is set."""

    url = "memory://away"

    def __init__(self, clock: ManualClock) -> None:
        self.inner = MemoryStore(clock)
        self.away = False

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.away and name != "close":
                raise StoreError(f"the store is away ({name})")
            return method(*args, **kwargs)

        return call


class CountingDetector:
    """A detector that counts the ticks that asked it."""

    def __init__(self) -> None:
        self.asked = 0

    @chaperone.hookimpl
    def chaperone_detect(self, runtime: Runtime, now: datetime) -> None:
        self.asked += 1


class TestSettling:
    """A store that just came back gives other processes time to carry their claims."""

    def test_detection_waits_two_probe_intervals_after_the_store_is_back(
        self, clock: ManualClock
    ) -> None:
        """Away: the monitor detects from memory. Back (found by the tick's probe): no
        detection for two probe intervals, then detection again."""
        away = AwayStore(clock)
        store = ResilientStore("memory://away", clock, lambda: away, probe_interval=1.0)  # type: ignore[arg-type, return-value]
        detector = CountingDetector()
        with make_runtime(
            detector,
            clock=clock,
            store=store,
            channels=("log",),
            timeout=5.0,
            grouping=GROUPING_OFF,
        ) as runtime:
            monitor = Monitor(runtime)
            away.away = True
            monitor.tick()
            assert store.state is StoreState.DEGRADED
            asked_while_away = detector.asked
            away.away = False
            clock.advance(1)
            monitor.tick()  # probes, recovers, and waits
            assert store.state is StoreState.UP
            assert detector.asked == asked_while_away
            clock.advance(1.5)
            monitor.tick()
            assert detector.asked == asked_while_away
            clock.advance(0.6)
            monitor.tick()
            assert detector.asked == asked_while_away + 1
            assert runtime.self_watch.wait(10) == 0
