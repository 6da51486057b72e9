"""The store check against real stores: a SQLite file that another connection holds
locked (``BEGIN IMMEDIATE``), a Redis URL where nothing listens, and a real Redis server.
Health answers within its timeout whatever the store does, and says what is wrong.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaperone import SystemClock
from chaperone.config import Settings
from chaperone.metrics import HealthReport, check_health
from chaperone.metrics._health import PROBE_PREFIX, close_when_idle
from chaperone.metrics._liveness import MonitorBeat
from chaperone.store import SQLiteStore, Store, open_store
from chaperone.testing.redis_server import RedisServer

TIMEOUT = 1.0
"""The store timeout these tests give health (seconds)."""
MARGIN = 3.0
"""What a loaded machine may add to the timeout before a test calls it a hang (seconds);
well under the SQLite store's own 10 s wait for a lock."""
REFUSING_URL = "redis://127.0.0.1:1/0?retries=0&connect_timeout=0.5"
"""Port 1 on loopback: nothing listens, every connection is refused."""


def ticking(store: Store) -> None:
    """Record a beat of a monitor that ticks every five minutes, as of now."""
    MonitorBeat(
        monitor="test-monitor",
        host="here",
        pid=1,
        interval=300.0,
        ticked_at=SystemClock().timestamp(),
    ).write(store)


def judged(store: Store) -> tuple[HealthReport, float]:
    """The report on ``store`` now, and the seconds it took."""
    started = time.monotonic()
    report = check_health(store, Settings(), SystemClock().timestamp(), store_timeout=TIMEOUT)
    return report, time.monotonic() - started


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SQLiteStore]:
    """A SQLite store with a ticking monitor; closed once no health read hangs on it."""
    path = tmp_path / "chaperone.sqlite3"
    store = SQLiteStore(path, SystemClock(), f"sqlite:///{path}")
    ticking(store)
    yield store
    assert close_when_idle(store, timeout=30)


class TestLockedSQLite:
    """Another connection holds the write lock of the file."""

    def test_answers_within_the_timeout_and_recovers(self, sqlite_store: SQLiteStore) -> None:
        """While locked: the store check fails within the timeout, saying reads answer
        but a write does not; the other checks are judged. Unlocked: healthy again.
        """
        holder = sqlite3.connect(sqlite_store.path, isolation_level=None, timeout=0)
        holder.execute("BEGIN IMMEDIATE")
        try:
            locked, took = judged(sqlite_store)
            again, took_again = judged(sqlite_store)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert took < TIMEOUT + MARGIN, took
        assert took_again < TIMEOUT + MARGIN, took_again
        assert locked.failed == ("store",), locked
        assert "reads answer, but writing a probe key gave no answer" in (
            locked.check("store").detail
        )
        assert "locked" in locked.check("store").detail
        assert "an earlier call has been waiting" in again.check("store").detail
        deadline = time.monotonic() + 30
        recovered, _ = judged(sqlite_store)
        while not recovered.healthy and time.monotonic() < deadline:
            recovered, _ = judged(sqlite_store)  # the stuck probe ends within SQLite's wait
        assert recovered.healthy, recovered
        assert sqlite_store.keys(PROBE_PREFIX) == []


class TestRedis:
    """A Redis store that refuses connections, and one that answers."""

    def test_refused_fails_every_check_quickly(self) -> None:
        """Nothing listens: each check fails, naming the refused connection, and the
        report comes back in well under the timeout plus margin.
        """
        store = open_store(REFUSING_URL, SystemClock())
        try:
            report, took = judged(store)
        finally:
            assert close_when_idle(store, timeout=30)
        assert took < TIMEOUT + MARGIN, took
        assert report.failed == ("store", "monitor", "detection", "outbox", "degraded", "delivery")
        detail = report.check("store").detail
        assert "127.0.0.1:1" in detail
        assert "refused" in detail.lower()
        assert report.check("monitor").detail == f"not checked: {detail}"
        assert report.to_dict()["stats"] is None

    def test_a_running_server_is_healthy(self, redis_server: RedisServer) -> None:
        """A real server with a ticking monitor: every check passes, no probe key left."""
        store = open_store(redis_server.url(prefix="healthtest:"), SystemClock())
        try:
            ticking(store)
            report, _ = judged(store)
            leftovers = store.keys(PROBE_PREFIX)
        finally:
            redis_server.clear("healthtest:")
            assert close_when_idle(store, timeout=30)
        assert report.healthy, report
        assert leftovers == []
