"""The SQLite store as a file: shared by connections and processes, persistent, and how it opens."""

from __future__ import annotations

import multiprocessing
import sqlite3
import traceback
from collections.abc import Iterator
from contextlib import closing
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import pytest

from chaperone._clock import ManualClock, SystemClock
from chaperone._exceptions import StoreError
from chaperone.store import SQLiteStore
from chaperone.store._sqlite import _MIGRATIONS, SCHEMA_VERSION

PROCESSES = 8
KEYS = 200
APPENDS = 60
STREAM_MAX_LEN = 100
JOIN_TIMEOUT_S = 60


def _open(path: Path, clock: Any = None) -> SQLiteStore:
    return SQLiteStore(path, clock or ManualClock(), f"sqlite:///{path}")


def _query(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql).fetchall()


# --- workers, run in spawned processes (module level so spawn can import them) -------------


def _race_worker(path: str, worker: int, barrier: Barrier, results: Any) -> None:
    """Open the store, then race the other workers for each key in turn."""
    try:
        store = SQLiteStore(Path(path), SystemClock(), f"sqlite:///{path}")
        try:
            won = []
            for index in range(KEYS):
                barrier.wait(timeout=JOIN_TIMEOUT_S)
                if store.set_if_absent(f"race:{index}", f"worker-{worker}", ttl=3600):
                    won.append(index)
        finally:
            store.close()
        results.put((worker, won, None))
    except BaseException:
        barrier.abort()
        results.put((worker, None, traceback.format_exc()))


def _append_worker(path: str, worker: int, barrier: Barrier, results: Any) -> None:
    """Append numbered records to one shared stream, all workers at once."""
    try:
        store = SQLiteStore(Path(path), SystemClock(), f"sqlite:///{path}")
        try:
            barrier.wait(timeout=JOIN_TIMEOUT_S)
            for index in range(APPENDS):
                store.append("shared", f"{worker}:{index}", max_len=STREAM_MAX_LEN)
        finally:
            store.close()
        results.put((worker, [], None))
    except BaseException:
        barrier.abort()
        results.put((worker, None, traceback.format_exc()))


def _run_workers(target: Any, path: Path, count: int) -> dict[int, list[int]]:
    """Start ``count`` spawned workers on ``path``; return each one's result, failing on errors."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(count)
    results = context.Queue()
    processes = [
        context.Process(target=target, args=(str(path), worker, barrier, results))
        for worker in range(count)
    ]
    try:
        for process in processes:
            process.start()
        collected: dict[int, list[int]] = {}
        errors: list[str] = []
        for _ in range(count):
            worker, outcome, error = results.get(timeout=JOIN_TIMEOUT_S)
            if error is not None:
                errors.append(error)
            else:
                collected[worker] = outcome
        for process in processes:
            process.join(timeout=JOIN_TIMEOUT_S)
        assert not errors, "\n".join(errors)
        assert [process.exitcode for process in processes] == [0] * count
        return collected
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join(timeout=5)
        results.close()
        results.join_thread()


class TestAcrossProcesses:
    def test_exactly_one_winner_per_key(self, tmp_path: Path) -> None:
        """Eight processes racing for each of fifty keys on one file yield one winner per key."""
        path = tmp_path / "race.sqlite3"
        won_by = _run_workers(_race_worker, path, PROCESSES)

        assert sorted(won_by) == list(range(PROCESSES))
        winners: dict[int, list[int]] = {index: [] for index in range(KEYS)}
        for worker, indices in won_by.items():
            for index in indices:
                winners[index].append(worker)
        assert {index: len(ws) for index, ws in winners.items()} == dict.fromkeys(range(KEYS), 1)
        store = _open(path, SystemClock())
        try:
            for index, (worker,) in winners.items():
                assert store.get(f"race:{index}") == f"worker-{worker}"
        finally:
            store.close()

    def test_concurrent_appends_keep_max_len(self, tmp_path: Path) -> None:
        """Processes appending at once lose no record the stream should keep."""
        path = tmp_path / "stream.sqlite3"
        workers = 4
        _run_workers(_append_worker, path, workers)

        store = _open(path)
        try:
            records = store.tail("shared", 1000)
        finally:
            store.close()
        assert len(records) == STREAM_MAX_LEN
        assert len(set(records)) == STREAM_MAX_LEN
        for worker in range(workers):
            own = [int(r.split(":")[1]) for r in records if r.startswith(f"{worker}:")]
            assert own == sorted(own, reverse=True)
            if own:
                assert own[0] == APPENDS - 1, "each worker's last record is among the newest"


class TestSharedFile:
    def test_two_stores_see_each_other(self, tmp_path: Path) -> None:
        """Two stores on one file share keys, set_if_absent ownership and streams."""
        clock = ManualClock()
        first = _open(tmp_path / "s.sqlite3", clock)
        second = _open(tmp_path / "s.sqlite3", clock)
        try:
            assert first.set_if_absent("k", "first", ttl=10)
            assert not second.set_if_absent("k", "second", ttl=10)
            assert second.get("k") == "first"
            second.append("s", "r", max_len=5)
            assert first.tail("s", 5) == ["r"]
            assert second.delete("k")
            assert first.get("k") is None
        finally:
            first.close()
            second.close()

    def test_data_survives_reopening(self, tmp_path: Path) -> None:
        """Keys, their expiry and streams persist after the store is closed and opened again."""
        clock = ManualClock()
        store = _open(tmp_path / "s.sqlite3", clock)
        store.set("forever", "v")
        store.set("brief", "v", ttl=5)
        store.append("s", "r", max_len=5)
        store.close()

        store = _open(tmp_path / "s.sqlite3", clock)
        try:
            assert store.keys("") == ["brief", "forever"]
            clock.advance(5)
            assert store.keys("") == ["forever"]
            assert store.tail("s", 5) == ["r"]
        finally:
            store.close()


class TestFileSettings:
    def test_schema_and_modes(self, tmp_path: Path) -> None:
        """The file is in WAL mode with the kv, streams and meta tables and a schema version."""
        path = tmp_path / "s.sqlite3"
        _open(path).close()
        assert _query(path, "PRAGMA journal_mode") == [("wal",)]
        tables = {row[0] for row in _query(path, "SELECT name FROM sqlite_master")}
        assert {"kv", "streams", "meta", "streams_stream_id"} <= tables
        version = _query(path, "SELECT value FROM meta WHERE key = 'schema_version'")
        assert version == [(str(SCHEMA_VERSION),)]

    def test_every_version_has_a_migration(self) -> None:
        """There is one migration step per schema version."""
        assert len(_MIGRATIONS) == SCHEMA_VERSION

    def test_connection_settings(self, tmp_path: Path) -> None:
        """The open connection waits for locks, syncs NORMAL and is in autocommit mode."""
        store = _open(tmp_path / "s.sqlite3")
        try:
            conn = store._conn
            assert conn is not None
            assert conn.isolation_level is None
            assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000
            assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        finally:
            store.close()

    def test_expired_rows_are_purged(self, tmp_path: Path) -> None:
        """Expired rows leave the file after enough writes, live ones stay."""
        path = tmp_path / "s.sqlite3"
        clock = ManualClock()
        store = _open(path, clock)
        try:
            store.set("live", "v")
            for index in range(300):
                store.set(f"tmp:{index}", "v", ttl=1)
                clock.advance(2)
        finally:
            store.close()
        rows = _query(path, "SELECT count(*) FROM kv")[0][0]
        assert rows < 300 - 200, "most expired rows should be gone"
        assert _query(path, "SELECT value FROM kv WHERE key = 'live'") == [("v",)]

    def test_opening_purges_expired_rows(self, tmp_path: Path) -> None:
        """Opening a file drops keys that expired while nobody had it open."""
        path = tmp_path / "s.sqlite3"
        clock = ManualClock()
        store = _open(path, clock)
        store.set("old", "v", ttl=1)
        store.close()
        clock.advance(2)
        _open(path, clock).close()
        assert _query(path, "SELECT count(*) FROM kv") == [(0,)]


class TestOpening:
    def test_creates_missing_parent_directories(self, tmp_path: Path) -> None:
        """Opening a file in a directory that does not exist yet creates the directory."""
        path = tmp_path / "a" / "b" / "s.sqlite3"
        _open(path).close()
        assert path.is_file()

    def test_parent_that_cannot_be_created(self, tmp_path: Path) -> None:
        """A parent path that is a file raises StoreError naming the path and the cause."""
        (tmp_path / "blocker").write_text("not a directory")
        path = tmp_path / "blocker" / "s.sqlite3"
        with pytest.raises(StoreError, match="blocker") as caught:
            _open(path)
        assert str(path) in str(caught.value)
        assert isinstance(caught.value.__cause__, OSError)

    def test_file_that_is_not_a_database(self, tmp_path: Path) -> None:
        """A file that is not SQLite raises StoreError naming the path and SQLite's complaint."""
        path = tmp_path / "notes.txt"
        path.write_bytes(b"this is not a database, just some text " * 100)
        with pytest.raises(StoreError, match="not a database") as caught:
            _open(path)
        assert str(path) in str(caught.value)
        assert isinstance(caught.value.__cause__, sqlite3.Error)

    def test_path_that_is_a_directory(self, tmp_path: Path) -> None:
        """A directory where the file should be raises StoreError naming the path."""
        with pytest.raises(StoreError) as caught:
            _open(tmp_path)
        assert str(tmp_path) in str(caught.value)

    def test_newer_schema_is_refused(self, tmp_path: Path) -> None:
        """A file written by a newer schema raises StoreError rather than being misread."""
        path = tmp_path / "s.sqlite3"
        _open(path).close()
        with closing(sqlite3.connect(path)) as conn, conn:
            conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", ("99",))
        with pytest.raises(StoreError, match="schema version 99") as caught:
            _open(path)
        assert str(path) in str(caught.value)

    def test_malformed_schema_version_is_refused(self, tmp_path: Path) -> None:
        """A schema version that is not a number raises StoreError."""
        path = tmp_path / "s.sqlite3"
        _open(path).close()
        with closing(sqlite3.connect(path)) as conn, conn:
            conn.execute("UPDATE meta SET value = 'banana' WHERE key = 'schema_version'")
        with pytest.raises(StoreError, match="banana"):
            _open(path)

    def test_sqlite_failure_later_is_a_store_error(self, tmp_path: Path) -> None:
        """A SQLite error during an operation surfaces as StoreError naming the path."""
        path = tmp_path / "s.sqlite3"
        store = _open(path)
        try:
            with closing(sqlite3.connect(path)) as conn, conn:
                conn.execute("DROP TABLE kv")
            with pytest.raises(StoreError, match="no such table") as caught:
                store.get("k")
            assert str(path) in str(caught.value)
        finally:
            store.close()


@pytest.fixture(autouse=True)
def _no_leftover_processes() -> Iterator[None]:
    yield
    assert multiprocessing.active_children() == []
