"""The delivery counters on real stores (memory, SQLite): totals, groupings, the windowed
failure rate on a manual clock, what a read costs, and a model-based property test.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from chaperone import ManualClock
from chaperone.metrics import (
    BUCKET_SECONDS,
    RETENTION_SECONDS,
    Counts,
    DeliveryStats,
    read_delivery_stats,
    record_delivery,
)
from chaperone.store import MemoryStore, SQLiteStore, Store

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def open_backend(name: str, clock: ManualClock, folder: Path) -> Store:
    """A fresh store of backend ``name`` on ``clock``."""
    if name == "memory":
        return MemoryStore(clock)
    path = folder / "metrics.sqlite3"
    return SQLiteStore(path, clock, f"sqlite:///{path}")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, clock: ManualClock, tmp_path: Path) -> Iterator[Store]:
    opened = open_backend(request.param, clock, tmp_path)
    yield opened
    opened.close()


def record(store: Store, clock: ManualClock, channel: str, alert_type: str, ok: bool) -> None:
    """Count one delivery at the clock's time."""
    record_delivery(
        store, channel=channel, alert_type=alert_type, delivered=ok, now=clock.timestamp()
    )


def snapshot(
    store: Store, clock: ManualClock, window: timedelta = HOUR, threshold: float = 5.0
) -> DeliveryStats:
    """Read the counters at the clock's time."""
    return read_delivery_stats(store, now=clock.timestamp(), window=window, threshold=threshold)


class CountingStore:
    """A real memory store that counts the calls made to it, to check what a read costs."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.calls: list[tuple[str, int]] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            size = len(args[0]) if name == "get_many" else 1
            self.calls.append((name, size))
            return method(*args, **kwargs)

        return call


class TestTotals:
    """All-time counts by channel, by type and by (channel, type)."""

    def test_counts_by_channel_type_and_pair(self, store: Store, clock: ManualClock) -> None:
        """Each delivery adds to its pair; channel and type sums agree with the totals."""
        record(store, clock, "slack", "job_stuck", True)
        record(store, clock, "slack", "job_stuck", False)
        record(store, clock, "mail", "job_stuck", True)
        record(store, clock, "mail", "job_timeout", True)
        stats = snapshot(store, clock)
        assert stats.pairs == {
            ("mail", "job_stuck"): Counts(sent=1),
            ("mail", "job_timeout"): Counts(sent=1),
            ("slack", "job_stuck"): Counts(sent=1, failed=1),
        }
        assert stats.totals == Counts(sent=3, failed=1)
        assert stats.by_channel == {"mail": Counts(sent=2), "slack": Counts(sent=1, failed=1)}
        assert stats.by_type == {"job_stuck": Counts(sent=2, failed=1), "job_timeout": Counts(1)}

    def test_totals_outlive_the_window_and_retention(
        self, store: Store, clock: ManualClock
    ) -> None:
        """A week later the all-time counts are unchanged; only the window is empty."""
        record(store, clock, "slack", "job_stuck", False)
        clock.advance(timedelta(days=7))
        stats = snapshot(store, clock, window=DAY)
        assert stats.totals == Counts(failed=1)
        assert stats.recent == Counts()

    def test_a_channel_name_with_separators_stays_its_own(
        self, store: Store, clock: ManualClock
    ) -> None:
        """Channel names are encoded in keys: ``a|b`` and ``a:b`` read back as given."""
        record(store, clock, "a|b", "job_stuck", True)
        record(store, clock, "a:b%20", "job_timeout", False)
        stats = snapshot(store, clock)
        assert stats.pairs == {
            ("a:b%20", "job_timeout"): Counts(failed=1),
            ("a|b", "job_stuck"): Counts(sent=1),
        }

    def test_empty_store(self, store: Store, clock: ManualClock) -> None:
        """Nothing counted: zero everywhere, healthy, rate 0."""
        stats = snapshot(store, clock)
        assert stats.totals == Counts()
        assert stats.pairs == {}
        assert stats.failure_rate == 0.0
        assert stats.healthy

    def test_to_dict_has_the_seed_shape(self, store: Store, clock: ManualClock) -> None:
        """``healthy``, ``stats`` (totals, by_channel, by_type) and ``failure_rate``."""
        record(store, clock, "slack", "job_stuck", True)
        record(store, clock, "slack", "job_stuck", True)
        record(store, clock, "mail", "job_stuck", False)
        data = snapshot(store, clock).to_dict()
        assert data == {
            "healthy": False,
            "stats": {
                "total_sent": 2,
                "total_failed": 1,
                "by_channel": {
                    "mail": {"sent": 0, "failed": 1},
                    "slack": {"sent": 2, "failed": 0},
                },
                "by_type": {"job_stuck": {"sent": 2, "failed": 1}},
            },
            "failure_rate": 33.33,
            "threshold": 5.0,
            "window": {"seconds": 3600, "sent": 2, "failed": 1},
        }


class TestWindow:
    """The failure rate counts the deliveries of the recent window only, to the minute."""

    def test_old_failures_stop_counting(self, store: Store, clock: ManualClock) -> None:
        """A burst of failures turns health red, and an hour of quiet turns it back."""
        for _ in range(10):
            record(store, clock, "slack", "job_stuck", False)
        assert not snapshot(store, clock).healthy
        clock.advance(HOUR + timedelta(minutes=1))
        record(store, clock, "slack", "job_stuck", True)
        stats = snapshot(store, clock)
        assert stats.recent == Counts(sent=1)
        assert stats.healthy
        assert stats.totals == Counts(sent=1, failed=10)

    def test_window_edges(self, store: Store, clock: ManualClock) -> None:
        """A delivery counts while its minute overlaps the window: 59 minutes back yes,
        61 minutes back no.
        """
        clock.advance(30)  # mid-minute, so the edges are not on bucket boundaries
        record(store, clock, "slack", "job_stuck", False)
        clock.advance(timedelta(minutes=59))
        assert snapshot(store, clock).recent == Counts(failed=1)
        clock.advance(timedelta(minutes=2))
        assert snapshot(store, clock).recent == Counts()

    def test_a_shorter_window_sees_less(self, store: Store, clock: ManualClock) -> None:
        """The same counters read over 5 minutes and over an hour."""
        record(store, clock, "slack", "job_stuck", False)
        clock.advance(timedelta(minutes=30))
        record(store, clock, "slack", "job_stuck", True)
        assert snapshot(store, clock, window=timedelta(minutes=5)).recent == Counts(sent=1)
        assert snapshot(store, clock, window=HOUR).recent == Counts(sent=1, failed=1)

    def test_a_day_window_reaches_a_day_back(self, store: Store, clock: ManualClock) -> None:
        """Buckets live long enough for the longest window: 23 h 59 m back still counts."""
        record(store, clock, "slack", "job_stuck", False)
        clock.advance(DAY - timedelta(minutes=1))
        assert snapshot(store, clock, window=DAY).recent == Counts(failed=1)
        clock.advance(timedelta(minutes=2))
        assert snapshot(store, clock, window=DAY).recent == Counts()

    @pytest.mark.parametrize(
        ("sent", "failed", "threshold", "healthy"),
        [
            (95, 5, 5.0, False),  # exactly at the threshold: unhealthy
            (96, 4, 5.0, True),
            (0, 1, 100.0, False),
            (1, 0, 0.0, False),  # a zero threshold: any delivery is too much
            (0, 0, 0.0, True),  # no deliveries: healthy whatever the threshold
        ],
    )
    def test_threshold_is_inclusive(
        self,
        store: Store,
        clock: ManualClock,
        sent: int,
        failed: int,
        threshold: float,
        healthy: bool,
    ) -> None:
        """Unhealthy when the rate is at or above the threshold, with deliveries."""
        for ok, times in ((True, sent), (False, failed)):
            for _ in range(times):
                record(store, clock, "slack", "job_stuck", ok)
        assert snapshot(store, clock, threshold=threshold).healthy is healthy


class TestReadCost:
    """A read is a few store calls whatever was counted."""

    def test_read_is_one_listing_and_one_get_many(self, clock: ManualClock) -> None:
        """keys() once over the totals, get_many() once over totals and the window's
        buckets (two per minute), and nothing that scans buckets.
        """
        inner = MemoryStore(clock)
        for minute in range(300):
            record(inner, clock, f"channel{minute % 3}", "job_stuck", minute % 2 == 0)
            clock.advance(BUCKET_SECONDS)
        counting = CountingStore(inner)
        stats = read_delivery_stats(
            counting,  # type: ignore[arg-type]
            now=clock.timestamp(),
            window=HOUR,
            threshold=5.0,
        )
        assert counting.calls == [("keys", 1), ("get_many", 6 + 2 * 60)]
        assert stats.recent.total == 59  # the current minute has nothing yet
        inner.close()

    def test_a_day_window_reads_every_minute_of_the_day(self, clock: ManualClock) -> None:
        """The longest window reads 2 x 1440 bucket keys, no more."""
        inner = MemoryStore(clock)
        counting = CountingStore(inner)
        read_delivery_stats(
            counting,  # type: ignore[arg-type]
            now=clock.timestamp(),
            window=timedelta(seconds=RETENTION_SECONDS * 7),
            threshold=5.0,
        )
        assert counting.calls == [("keys", 1), ("get_many", 2 * RETENTION_SECONDS // 60)]
        inner.close()


# -- the property: the counters are a model of what was recorded ------------------------

CHANNELS = ["slack", "mail", "web|hook"]
TYPES = ["job_stuck", "job_timeout", "circuit_breaker"]

steps = st.lists(
    st.tuples(
        st.one_of(  # seconds since the step before: anything, whole minutes, or few
            st.floats(min_value=0, max_value=6 * 3600, allow_nan=False),
            st.integers(min_value=0, max_value=10).map(lambda minutes: minutes * 60.0),
            st.integers(min_value=0, max_value=360).map(lambda minutes: minutes * 60.0),
            st.sampled_from([0.0, 0.5, 30.0, 59.5]),
        ),
        st.sampled_from(CHANNELS),
        st.sampled_from(TYPES),
        st.booleans(),  # delivered or failed
    ),
    min_size=1,
    max_size=15,
)
windows = st.one_of(
    st.integers(min_value=1, max_value=10), st.integers(min_value=1, max_value=24 * 60)
).map(lambda minutes: timedelta(minutes=minutes))


def model_window(events: list[tuple[float, bool]], now: float, window: timedelta) -> Counts:
    """What the window should hold: deliveries whose minute overlaps the last ``window``."""
    last = int(now // 60)
    first = int((now - window.total_seconds()) // 60) + 1
    inside = [ok for at, ok in events if first <= int(at // 60) <= last]
    return Counts(sent=sum(inside), failed=len(inside) - sum(inside))


@pytest.fixture(scope="module")
def shared_stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One store per backend for every example (clearing ``metrics:`` before each)."""
    clocks = {name: ManualClock() for name in ("memory", "sqlite")}
    folder = tmp_path_factory.mktemp("metrics-model")
    stores = {name: open_backend(name, clocks[name], folder) for name in clocks}
    yield {"clocks": clocks, "stores": stores}
    for opened in stores.values():
        opened.close()


class TestModel:
    """Whatever sequence of deliveries, the snapshot is what a plain model says."""

    @pytest.mark.parametrize("backend", ["memory", "sqlite"])
    @given(steps=steps, window=windows, threshold=st.sampled_from([0.0, 5.0, 50.0, 100.0]))
    @hypothesis_settings(
        max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    def test_snapshot_matches_model(
        self,
        shared_stores: dict[str, Any],
        backend: str,
        steps: list[tuple[float, str, str, bool]],
        window: timedelta,
        threshold: float,
    ) -> None:
        """Totals per pair, per channel, per type and overall, and the window's counts
        and health match the model after every step; no total ever goes down.
        """
        store: Store = shared_stores["stores"][backend]
        clock: ManualClock = shared_stores["clocks"][backend]
        store.delete_prefix("metrics:")
        pairs: dict[tuple[str, str], Counts] = {}
        events: list[tuple[float, bool]] = []
        previous: dict[tuple[str, str], Counts] = {}
        for gap, channel, alert_type, ok in steps:
            clock.advance(gap)
            record(store, clock, channel, alert_type, ok)
            now = clock.timestamp()
            events.append((now, ok))
            pairs[(channel, alert_type)] = pairs.get((channel, alert_type), Counts()) + Counts(
                sent=int(ok), failed=int(not ok)
            )
            stats = snapshot(store, clock, window=window, threshold=threshold)
            assert stats.pairs == pairs
            assert stats.totals == sum(pairs.values(), Counts())
            for name in CHANNELS:
                expected = sum((c for (ch, _), c in pairs.items() if ch == name), Counts())
                assert stats.by_channel.get(name, Counts()) == expected
            for name in TYPES:
                expected = sum((c for (_, t), c in pairs.items() if t == name), Counts())
                assert stats.by_type.get(name, Counts()) == expected
            recent = model_window(events, now, window)
            assert stats.recent == recent
            rate = 100.0 * recent.failed / recent.total if recent.total else 0.0
            assert stats.failure_rate == pytest.approx(rate)
            assert stats.healthy is (recent.total == 0 or rate < threshold)
            for pair, counts in previous.items():  # monotonic: nothing goes down
                assert stats.pairs[pair].sent >= counts.sent
                assert stats.pairs[pair].failed >= counts.failed
            previous = dict(stats.pairs)


class TestKeys:
    """Where the counters live in the store."""

    def test_minutes_are_numbered_from_the_epoch(self) -> None:
        """Two processes agree on a bucket from the time alone (no per-process state)."""
        clock = ManualClock()
        first, second = MemoryStore(clock), MemoryStore(clock)
        for opened in (first, second):
            record(opened, clock, "slack", "job_stuck", True)
        minute = int(clock.timestamp() // 60)
        assert first.keys("metrics:minute:") == [f"metrics:minute:{minute}:sent"]
        assert second.keys("metrics:minute:") == first.keys("metrics:minute:")
        for opened in (first, second):
            opened.close()

    def test_totals_never_expire_and_buckets_do(self, store: Store, clock: ManualClock) -> None:
        """After two days the total is there and the bucket is gone."""
        record(store, clock, "slack", "job_stuck", False)
        clock.advance(2 * DAY)
        assert store.keys("metrics:total:") == ["metrics:total:failed:slack|job_stuck"]
        assert store.keys("metrics:minute:") == []
