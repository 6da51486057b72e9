"""The SQLite store as a file: shared by connections and processes, persistent, and how it opens."""

from __future__ import annotations

import multiprocessing
import queue
import sqlite3
import time
import traceback
from collections.abc import Iterator
from contextlib import closing
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import attrs
import pytest

from chaperone._clock import Clock, ManualClock, SystemClock
from chaperone._exceptions import StoreError
from chaperone.store import SQLiteStore
from chaperone.store._sqlite import _MIGRATIONS, SCHEMA_VERSION

PROCESSES = 8
KEYS = 200
APPENDS = 60
STREAM_MAX_LEN = 100
TIMEOUT_S = 60.0


def _open(path: Path, clock: Clock | None = None) -> SQLiteStore:
    return SQLiteStore(path, clock or ManualClock(), f"sqlite:///{path}")


def _query(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql).fetchall()


def _worker(path: str, worker: int, barrier: Barrier, results: Any) -> None:
    """Run in a spawned process: race the others for each key, then append to one stream.

    Every worker opens the not-yet-existing file at once, so creating the schema races
    too. Each key's race starts when all workers reach the barrier.
    """
    try:
        store = SQLiteStore(Path(path), SystemClock(), f"sqlite:///{path}")
        try:
            won = []
            for index in range(KEYS):
                barrier.wait(timeout=TIMEOUT_S)
                if store.set_if_absent(f"race:{index}", f"worker-{worker}", ttl=3600):
                    won.append(index)
            barrier.wait(timeout=TIMEOUT_S)
            for index in range(APPENDS):
                store.append("shared", f"{worker}:{index}", max_len=STREAM_MAX_LEN)
        finally:
            store.close()
        results.put((worker, won, None))
    except BaseException:
        barrier.abort()
        results.put((worker, None, traceback.format_exc()))


@attrs.frozen
class Outcome:
    """What the workers did to one file: the keys each one won."""

    path: Path
    won_by: dict[int, list[int]]


def _run_workers(path: Path) -> Outcome:
    """Run the workers on ``path``; fail with their tracebacks if any of them failed."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    results = context.Queue()
    processes = [
        context.Process(target=_worker, args=(str(path), worker, barrier, results))
        for worker in range(PROCESSES)
    ]
    won_by: dict[int, list[int]] = {}
    errors: list[str] = []
    try:
        for process in processes:
            process.start()
        deadline = time.monotonic() + TIMEOUT_S
        while len(won_by) + len(errors) < PROCESSES and time.monotonic() < deadline:
            try:
                worker, won, error = results.get(timeout=0.2)
            except queue.Empty:
                crashed = [p for p in processes if p.exitcode not in (None, 0)]
                if crashed:  # died without reporting: free the others from the barrier
                    barrier.abort()
                if all(p.exitcode is not None for p in processes) and results.empty():
                    errors.extend(f"{p.name} exited with {p.exitcode}" for p in crashed)
                    break
                continue
            if error is None:
                won_by[worker] = won
            else:
                errors.append(error)
        for process in processes:
            process.join(timeout=TIMEOUT_S)
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join(timeout=5)
        results.close()
        results.join_thread()
    assert not errors, "\n".join(errors)
    assert sorted(won_by) == list(range(PROCESSES)), "every worker reports"
    assert [process.exitcode for process in processes] == [0] * PROCESSES
    return Outcome(path, won_by)


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    """One run of the workers, shared by the tests that check what it left behind."""
    return _run_workers(tmp_path_factory.mktemp("processes") / "shared.sqlite3")


class TestAcrossProcesses:
    def test_exactly_one_winner_per_key(self, outcome: Outcome) -> None:
        """Eight processes racing for each key on one file yield exactly one winner per key."""
        winners: dict[int, list[int]] = {index: [] for index in range(KEYS)}
        for worker, indices in outcome.won_by.items():
            for index in indices:
                winners[index].append(worker)
        assert {index: len(ws) for index, ws in winners.items()} == dict.fromkeys(range(KEYS), 1)

    def test_winners_value_is_stored(self, outcome: Outcome) -> None:
        """The value left under each key is the one its winner wrote."""
        store = _open(outcome.path, SystemClock())
        try:
            stored = {index: store.get(f"race:{index}") for index in range(KEYS)}
        finally:
            store.close()
        expected = {
            index: f"worker-{worker}"
            for worker, indices in outcome.won_by.items()
            for index in indices
        }
        assert stored == expected

    def test_concurrent_appends_keep_max_len(self, outcome: Outcome) -> None:
        """Processes appending at once leave exactly the newest max_len records, in order."""
        store = _open(outcome.path)
        try:
            records = store.tail("shared", 10 * STREAM_MAX_LEN)
        finally:
            store.close()
        assert len(records) == STREAM_MAX_LEN
        assert len(set(records)) == STREAM_MAX_LEN
        for worker in range(PROCESSES):
            own = [int(r.split(":")[1]) for r in records if r.startswith(f"{worker}:")]
            assert own == sorted(own, reverse=True)
            if own:  # a record kept means every later one by the same worker is kept too
                assert own == list(range(APPENDS - 1, APPENDS - 1 - len(own), -1))


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
