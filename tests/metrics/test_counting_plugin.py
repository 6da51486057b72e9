"""The built-in metrics plugin, through a real Chaperone: recording channels that succeed,
fail for good, or fail transiently until the retries run out, on memory, SQLite and
Redis stores.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from pathlib import Path
from typing import Any, Self

import pytest
from structlog.testing import capture_logs

from chaperone import (
    Alert,
    Channel,
    ChannelSettings,
    Chaperone,
    JobStuck,
    ManualClock,
    Outcome,
    SendContext,
    StoreError,
)
from chaperone.config import DeliverySettings
from chaperone.metrics import Counts, DeliveryStats, read_delivery_stats
from chaperone.store import MemoryStore, SQLiteStore, Store
from chaperone.testing.redis_server import RedisServer
from helpers.delivery import Channels
from helpers.runtime import make_runtime


class Sink:
    """What the in-test channels were sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Alert, int]] = []

    def channel(self, name: str, answer: Outcome) -> type[Channel]:
        """A channel class named ``name`` that records each attempt and answers ``answer``."""
        sink = self

        class Recording(Channel):
            @classmethod
            def from_settings(cls, settings: ChannelSettings) -> Self:
                return cls()

            async def send(self, alert: Alert, context: SendContext) -> Outcome:
                sink.sent.append((name, alert, context.attempt))
                return answer

        Recording.name = name
        return Recording

    def received(self, name: str) -> int:
        """How many alerts channel ``name`` was sent (first attempts only)."""
        return sum(1 for channel, _, attempt in self.sent if channel == name and attempt == 1)


_prefixes = itertools.count()
"""A fresh Redis key prefix per test."""


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """Opens a store of one backend on a given clock (the runtime closes it)."""

    def open_store(clock: ManualClock) -> Store:
        if request.param == "memory":
            return MemoryStore(clock)
        if request.param == "sqlite":
            path = tmp_path / "c.sqlite3"
            return SQLiteStore(path, clock, f"sqlite:///{path}")
        from chaperone.store._redis import RedisStore

        server: RedisServer = request.getfixturevalue("redis_server")
        prefix = f"metrics{next(_prefixes)}:"
        request.addfinalizer(lambda: server.clear(prefix))
        return RedisStore(server.url(prefix=prefix), clock)

    return open_store


def counting_runtime(sink: Sink, store: Store, clock: ManualClock, **settings: Any) -> Chaperone:
    """A runtime with channels ``good`` (delivers), ``bad`` (refuses for good) and
    ``flaky`` (fails transiently every time), three attempts each, no real waiting.
    """
    plugin = Channels(
        sink.channel("good", Outcome.delivered()),
        sink.channel("bad", Outcome.permanent("HTTP 400: invalid_payload")),
        sink.channel("flaky", Outcome.transient("HTTP 503")),
    )
    settings.setdefault("channels", ("good", "bad"))
    return make_runtime(
        ("test-channels", plugin),
        store=store,
        clock=clock,
        delivery=DeliverySettings(max_attempts=3, max_backoff=timedelta(seconds=1)),
        **settings,
    )


def stuck(supervision_id: str) -> JobStuck:
    """A JobStuck event for its own job (so no filter holds it back)."""
    return JobStuck(
        supervision_id=supervision_id,
        job_class=f"App\\Jobs\\Import{supervision_id}",
        stuck_duration=timedelta(minutes=10),
    )


def custom(alert_type: str, key: str, clock: ManualClock) -> Alert:
    """A hand-built alert of ``alert_type``."""
    return Alert(
        type=alert_type,
        key=key,
        headline="Custom",
        title=f"Custom: {key}",
        summary="Something happened.",
        occurred_at=clock.now(),
    )


def read(runtime: Chaperone, window: timedelta = timedelta(hours=1)) -> DeliveryStats:
    """A snapshot of the runtime's counters at its clock's time."""
    return read_delivery_stats(
        runtime.store, now=runtime.clock.timestamp(), window=window, threshold=5.0
    )


class TestCountingThroughTheRuntime:
    """Each delivery's final outcome is counted once, by channel and type."""

    def test_delivered_and_failed_are_counted(self, store_factory: Any) -> None:
        """Three stuck jobs and two custom alerts to ``good`` and ``bad``: five failed,
        and six sent (the five, and the degraded alert about ``bad``, which goes to
        ``good`` only), matching what the channels were handed.
        """
        clock, sink = ManualClock(), Sink()
        with counting_runtime(sink, store_factory(clock), clock) as runtime:
            for number in range(3):
                report = runtime.dispatch(stuck(f"sup-{number}"))
                assert [alert.delivered for alert in report.alerts] == [False]  # bad failed
            for number in range(2):
                runtime.send(custom("queue_backlog", f"q{number}", clock), is_test=True)
            assert runtime.self_watch.wait(10) == 0
            stats = read(runtime)
        assert sink.received("good") == 6
        assert sink.received("bad") == 5
        assert stats.pairs == {
            ("bad", "job_stuck"): Counts(failed=3),
            ("bad", "queue_backlog"): Counts(failed=2),
            ("good", "chaperone_degraded"): Counts(sent=1),
            ("good", "job_stuck"): Counts(sent=3),
            ("good", "queue_backlog"): Counts(sent=2),
        }
        assert stats.by_channel == {"bad": Counts(failed=5), "good": Counts(sent=6)}
        assert stats.by_type == {
            "chaperone_degraded": Counts(1, 0),
            "job_stuck": Counts(3, 3),
            "queue_backlog": Counts(2, 2),
        }
        assert stats.recent == Counts(sent=6, failed=5)
        assert round(stats.failure_rate, 2) == 45.45
        assert not stats.healthy

    def test_retries_count_once(self, store_factory: Any) -> None:
        """A transient failure retried three times is one failed delivery, not three."""
        clock, sink = ManualClock(), Sink()
        with counting_runtime(sink, store_factory(clock), clock, channels=("flaky",)) as runtime:
            runtime.dispatch(stuck("sup-1"))
            stats = read(runtime)
        assert [attempt for _, _, attempt in sink.sent] == [1, 2, 3]
        assert stats.pairs == {("flaky", "job_stuck"): Counts(failed=1)}

    def test_all_delivered_is_healthy(self, store_factory: Any) -> None:
        """Only the good channel: every delivery counted as sent, rate 0, healthy."""
        clock, sink = ManualClock(), Sink()
        with counting_runtime(sink, store_factory(clock), clock, channels=("good",)) as runtime:
            for number in range(4):
                runtime.dispatch(stuck(f"sup-{number}"))
            stats = read(runtime)
        assert stats.totals == Counts(sent=4)
        assert stats.healthy
        assert stats.failure_rate == 0.0

    def test_counts_use_the_runtime_clock(self, store_factory: Any) -> None:
        """Failures an hour and more before the runtime's clock leave the window."""
        clock, sink = ManualClock(), Sink()
        with counting_runtime(sink, store_factory(clock), clock, channels=("bad",)) as runtime:
            runtime.dispatch(stuck("sup-1"))
            clock.advance(timedelta(minutes=61))
            stats = read(runtime)
        assert stats.totals == Counts(failed=1)
        assert stats.recent == Counts()
        assert stats.healthy


class BrokenCounterStore(MemoryStore):
    """A real memory store whose counters are away (as a Redis that went down)."""

    def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        if key.startswith("metrics:"):
            raise StoreError("add to a counter: connection refused")
        return super().incr(key, amount, ttl)


class TestStoreAway:
    """Counting never gets in the way of delivering."""

    def test_delivery_goes_on_and_the_miss_is_logged(self) -> None:
        """With the counters failing, the alert is still delivered and reported
        delivered; one warning per delivery names the channel.
        """
        clock, sink = ManualClock(), Sink()
        with (
            counting_runtime(sink, BrokenCounterStore(clock), clock, channels=("good",)) as runtime,
            capture_logs() as logs,
        ):
            report = runtime.dispatch(stuck("sup-1"))
        assert [alert.delivered for alert in report.alerts] == [True]
        assert sink.received("good") == 1
        missed = [
            entry for entry in logs if entry["event"] == "delivery not counted in the metrics"
        ]
        assert len(missed) == 1
        assert missed[0]["channel"] == "good"
        assert missed[0]["log_level"] == "warning"
        assert "connection refused" in missed[0]["error"]
        assert not [entry for entry in logs if entry["event"] == "plugin hook raised"]
