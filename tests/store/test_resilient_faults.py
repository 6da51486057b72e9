"""ResilientStore against real faults: a corrupt SQLite file, a disk that fills up, the
file deleted under the process, another process holding the write lock, and a Redis
server stopped and started again. Each time the caller's operations keep working, and
what they did reaches the store once it is back.

The waits here are real (a process holding a lock, a server restarting), never windows of
Chaperone's clock.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaperone._clock import ManualClock
from chaperone._outbox import DUE_INDEX, ENTRY_PREFIX, LEASE_PREFIX, Outbox
from chaperone._verdicts import Destination
from chaperone.store import SQLiteStore, StoreChange, StoreState, open_resilient_store
from chaperone.store._redis import RedisStore
from chaperone.testing.redis_server import RedisServer, redis_server_or_skip
from helpers.delivery import make_alert
from helpers.store_faults import WriteLock, fill_disk, in_another_process, small_disk

_WRITE = """
import sys
from chaperone._clock import SystemClock
from chaperone.store import open_store
store = open_store(sys.argv[1], SystemClock())
store.set(sys.argv[2], sys.argv[3])
store.close()
"""
_READ = """
import sys
from chaperone._clock import SystemClock
from chaperone.store import open_store
store = open_store(sys.argv[1], SystemClock())
print(store.get(sys.argv[2]))
store.close()
"""


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def _read(path: Path, clock: ManualClock, keys: list[str]) -> dict[str, str]:
    """What a fresh store on ``path`` holds of ``keys``."""
    check = SQLiteStore(path, clock, f"sqlite:///{path}")
    try:
        return check.get_many(keys)
    finally:
        check.close()


class TestCorruptFile:
    def test_starts_degraded_and_catches_up_once_the_file_is_replaced(
        self, tmp_path: Path, clock: ManualClock
    ) -> None:
        """A corrupt file at open leaves the store degraded with SQLite's complaint; the
        caller's operations work; probes fail until the file is moved away, and then what
        was done meanwhile is in the new file."""
        path = tmp_path / "store.sqlite3"
        path.write_bytes(b"this is not a database " * 512)
        store = open_resilient_store(f"sqlite:///{path}", clock, busy_timeout=0.2)
        try:
            assert store.state is StoreState.DEGRADED
            assert store.reason is not None
            assert "file is not a database" in store.reason
            store.set("job", "running")
            assert store.incr("beats", 3) == 3
            assert not store.probe()
            assert not store.probe()
            path.rename(tmp_path / "corrupt.sqlite3")
            assert store.probe()
            assert store.state is StoreState.UP
        finally:
            store.close()
        assert _read(path, clock, ["job", "beats"]) == {"job": "running", "beats": "3"}


class TestDiskFull:
    def test_degrades_while_full_and_catches_up_when_there_is_room(
        self, tmp_path: Path, clock: ManualClock
    ) -> None:
        """A store on a disk that fills goes degraded ("database or disk is full"), works
        from memory, fails its probes while the disk is full, and carries everything once
        space is freed. (Skipped where a tmpfs cannot be mounted.)"""
        with small_disk(tmp_path / "disk") as disk:
            path = disk / "store.sqlite3"
            store = open_resilient_store(f"sqlite:///{path}", clock, busy_timeout=0.2)
            try:
                store.set("before", "v")
                filler = fill_disk(disk)
                written = 0
                while store.state is StoreState.UP and written < 1000:
                    store.set(f"big{written}", "x" * 50_000)
                    written += 1
                assert store.state is StoreState.DEGRADED
                assert store.reason is not None
                assert "database or disk is full" in store.reason
                store.set("during", "v")
                assert store.incr("beats") == 1
                assert not store.probe()
                assert store.state is StoreState.DEGRADED
                filler.unlink()
                assert store.probe()
            finally:
                store.close()
            last = f"big{written - 1}"
            assert _read(path, clock, ["before", "during", "beats", last]) == {
                "before": "v",
                "during": "v",
                "beats": "1",
                last: "x" * 50_000,
            }


class TestFileDeleted:
    def test_found_reopened_and_shared_with_the_other_process(
        self, tmp_path: Path, clock: ManualClock
    ) -> None:
        """The file deleted under the process is found within a second; the store works
        from memory, its probe opens the new file another process created, and both
        processes then see each other's writes."""
        path = tmp_path / "store.sqlite3"
        url = f"sqlite:///{path}"
        store = open_resilient_store(url, clock, busy_timeout=0.2)
        changes: list[StoreChange] = []
        store.add_listener(changes.append)
        try:
            store.set("old", "v")
            path.unlink()
            clock.advance(1)
            store.set("during", "v")
            assert store.state is StoreState.DEGRADED
            assert store.reason is not None
            assert "deleted or replaced" in store.reason
            in_another_process(_WRITE, url, "theirs", "written")
            assert store.get("theirs") is None  # degraded: memory only
            assert store.probe()
            assert store.get_many(["old", "during", "theirs"]) == {
                "during": "v",
                "theirs": "written",
            }
            assert in_another_process(_READ, url, "during").splitlines()[-1] == "v"
            assert [change.state for change in changes] == [StoreState.DEGRADED, StoreState.UP]
        finally:
            store.close()


class TestLocked:
    def test_degrades_after_the_busy_timeout_and_recovers_when_released(
        self, tmp_path: Path, clock: ManualClock
    ) -> None:
        """Another process holding the write lock past the busy timeout costs one
        operation that timeout; the next ones run from memory at once; once the lock
        is released a probe carries them."""
        path = tmp_path / "store.sqlite3"
        store = open_resilient_store(f"sqlite:///{path}", clock, busy_timeout=0.2)
        try:
            store.set("k", "v")
            with WriteLock(path):
                started = time.monotonic()
                store.set("k", "w")
                first = time.monotonic() - started
                assert store.state is StoreState.DEGRADED
                assert store.reason is not None
                assert "database is locked" in store.reason
                started = time.monotonic()
                for _ in range(200):
                    store.incr("beats")
                rest = time.monotonic() - started
                assert not store.probe()
            assert store.probe()
        finally:
            store.close()
        assert 0.2 <= first < 5.0
        assert rest < 1.0
        assert _read(path, clock, ["k", "beats"]) == {"k": "w", "beats": "200"}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own that keeps its data across a restart."""
    binary = redis_server_or_skip()
    folder = tmp_path / "redis"
    folder.mkdir()
    with RedisServer(binary, folder, appendonly=True) as started:
        yield started


class TestRedisStopped:
    def test_outbox_entries_of_the_outage_end_in_redis_once(
        self, server: RedisServer, clock: ManualClock
    ) -> None:
        """Entries enqueued while Redis is stopped, and not acknowledged, are in Redis
        exactly once after it is back (with their due times and leases); acknowledged
        ones left nothing; another process claims each pending entry once."""
        url = server.url(prefix="t:", retries="0", connect_timeout="0.5", timeout="0.5")
        store = open_resilient_store(url, clock)
        outbox = Outbox(store, clock, owner="here")
        try:
            before = outbox.enqueue(make_alert("before"), Destination(channel="log"), lease=30)
            server.stop()
            claims = [
                outbox.enqueue(make_alert(f"during-{index}"), Destination(channel="log"), lease=30)
                for index in range(5)
            ]
            assert store.state is StoreState.DEGRADED
            outbox.ack(claims[0])
            outbox.ack(claims[1])
            assert not store.probe()
            server.start()
            assert store.probe()
            assert store.probe()  # nothing is carried twice
        finally:
            store.close()
        pending = sorted([before.entry.id, *(claim.entry.id for claim in claims[2:])])
        check = RedisStore(url, clock)
        try:
            assert check.keys(ENTRY_PREFIX) == [ENTRY_PREFIX + entry for entry in pending]
            assert check.keys(LEASE_PREFIX) == [LEASE_PREFIX + entry for entry in pending]
            due = check.due(DUE_INDEX, float("inf"), 100)
            assert sorted(member for member, _ in due) == pending
            elsewhere = Outbox(check, clock, owner="elsewhere")
            clock.advance(31)
            claimed = elsewhere.claim_due(100, lease=30) + elsewhere.claim_due(100, lease=30)
            assert sorted(claim.entry.id for claim in claimed) == pending
        finally:
            check.close()
