"""Every monitor that vouches for the store leaves a beat there on each tick, with the
tick's detection error; a detector that raises makes ``detection`` a degraded part until
a tick detects cleanly.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest

import chaperone
from chaperone import Alert, ManualClock, Monitor, Outcome, Runtime, SendContext
from chaperone.metrics._liveness import beat_ttl, read_beats, read_degraded
from helpers.delivery import Channels, make_runtime, scripted


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
) -> Iterator[Runtime]:
    """A runtime with the flaky detector, sending to "pager"."""

    async def keep(alert: Alert, context: SendContext) -> Outcome:
        received.append(alert)
        return Outcome.delivered("ok")

    with make_runtime(
        Channels(scripted("pager", keep)), detector, clock=clock, channels=("pager",)
    ) as made:
        yield made


class TestBeats:
    """What a monitor tells health about itself."""

    def test_each_tick_leaves_a_beat(self, runtime: Runtime, clock: ManualClock) -> None:
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

    def test_a_monitor_that_stops_soon_leaves_none(self, runtime: Runtime) -> None:
        """The monitor inside ``chaperone run`` (vouch_for=None) writes no beat."""
        Monitor(runtime, vouch_for=None).tick()
        assert read_beats(runtime.store) == []


class TestDetectionErrors:
    """A detector that raises is a degraded part of Chaperone."""

    def test_a_raising_detector_is_alerted_and_resolved(
        self,
        runtime: Runtime,
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
