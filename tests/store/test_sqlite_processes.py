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
INCRS = 200
PUSHES = 250
TIMEOUT_S = 60.0


def _open(path: Path, clock: Clock | None = None) -> SQLiteStore:
    return SQLiteStore(path, clock or ManualClock(), f"sqlite:///{path}")


def _query(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql).fetchall()


@attrs.frozen
class Report:
    """What one worker saw: the keys it won, the totals incr gave it, the records it popped."""

    won: list[int]
    totals: list[int]
    popped: list[str]


def _worker(path: str, worker: int, barrier: Barrier, results: Any) -> None:
    """Run in a spawned process: race the others for each key, then append to one stream,
    add to one counter and push to one queue, and last drain that queue.

    Every worker opens the not-yet-existing file at once, so creating the schema races
    too. Each key's race starts when all workers reach the barrier; popping starts once
    every worker has pushed, so an empty pop means the queue is drained.
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
            barrier.wait(timeout=TIMEOUT_S)
            totals = [store.incr("hits") for _ in range(INCRS)]
            for index in range(PUSHES):
                store.push("work", f"{worker}:{index:03d}")
            barrier.wait(timeout=TIMEOUT_S)
            popped: list[str] = []
            for attempt in range(PROCESSES * PUSHES + 1):
                batch = store.pop("work", 1 + (worker + attempt) % 5)
                if not batch:
                    break
                popped.extend(batch)
        finally:
            store.close()
        results.put((worker, Report(won, totals, popped), None))
    except BaseException:
        barrier.abort()
        results.put((worker, None, traceback.format_exc()))


@attrs.frozen
class Outcome:
    """What the workers did to one file: what each one reported, by worker."""

    path: Path
    reports: dict[int, Report]

    @property
    def won_by(self) -> dict[int, list[int]]:
        """The keys each worker won."""
        return {worker: report.won for worker, report in self.reports.items()}


def _run_workers(path: Path) -> Outcome:
    """Run the workers on ``path``; fail with their tracebacks if any of them failed."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    results = context.Queue()
    processes = [
        context.Process(target=_worker, args=(str(path), worker, barrier, results))
        for worker in range(PROCESSES)
    ]
    reports: dict[int, Report] = {}
    errors: list[str] = []
    try:
        for process in processes:
            process.start()
        deadline = time.monotonic() + TIMEOUT_S
        while len(reports) + len(errors) < PROCESSES and time.monotonic() < deadline:
            try:
                worker, report, error = results.get(timeout=0.2)
            except queue.Empty:
                crashed = [p for p in processes if p.exitcode not in (None, 0)]
                if crashed:  # died without reporting: free the others from the barrier
                    barrier.abort()
                if all(p.exitcode is not None for p in processes) and results.empty():
                    errors.extend(f"{p.name} exited with {p.exitcode}" for p in crashed)
                    break
                continue
            if error is None:
                reports[worker] = report
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
    assert sorted(reports) == list(range(PROCESSES)), "every worker reports"
    assert [process.exitcode for process in processes] == [0] * PROCESSES
    return Outcome(path, reports)


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

    def test_counter_ends_at_the_number_of_calls(self, outcome: Outcome) -> None:
        """Eight processes each adding 200 times to one key leave exactly 1600."""
        store = _open(outcome.path)
        try:
            assert store.get("hits") == str(PROCESSES * INCRS)
        finally:
            store.close()

    def test_every_counter_total_goes_to_one_caller(self, outcome: Outcome) -> None:
        """The totals incr returned across processes are 1..1600, each to exactly one call."""
        returned = [total for report in outcome.reports.values() for total in report.totals]
        assert sorted(returned) == list(range(1, PROCESSES * INCRS + 1))
        assert all(r.totals == sorted(r.totals) for r in outcome.reports.values())

    def test_every_record_is_popped_exactly_once(self, outcome: Outcome) -> None:
        """Eight processes draining a queue of 2000 pushed records get each exactly once."""
        popped = [record for report in outcome.reports.values() for record in report.popped]
        pushed = [f"{worker}:{index:03d}" for worker in range(PROCESSES) for index in range(PUSHES)]
        assert len(popped) == len(pushed) == 2000
        assert sorted(popped) == sorted(pushed)
        store = _open(outcome.path)
        try:
            assert store.pop("work", 10) == []
        finally:
            store.close()

    def test_each_process_pops_in_fifo_order(self, outcome: Outcome) -> None:
        """Of one pusher's records, each popping process gets them in the order pushed."""
        for report in outcome.reports.values():
            for pusher in range(PROCESSES):
                own = [r for r in report.popped if r.startswith(f"{pusher}:")]
                assert own == sorted(own)


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
        """The file is in WAL mode with its tables, their indexes and a schema version."""
        path = tmp_path / "s.sqlite3"
        _open(path).close()
        assert _query(path, "PRAGMA journal_mode") == [("wal",)]
        tables = {row[0] for row in _query(path, "SELECT name FROM sqlite_master")}
        assert {"kv", "streams", "meta", "streams_stream_id"} <= tables
        assert {"deadlines", "deadlines_idx_at", "queues", "queues_queue_id"} <= tables
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


_VERSION_1_SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires_at REAL)",
    "CREATE INDEX kv_expires_at ON kv (expires_at)",
    "CREATE TABLE streams ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, stream TEXT NOT NULL, record TEXT NOT NULL)",
    "CREATE INDEX streams_stream_id ON streams (stream, id)",
    "INSERT INTO meta VALUES ('schema_version', '1')",
)
"""A file as Chaperone 0.1 wrote it (schema version 1), frozen here, not read from the code."""


class TestMigration:
    @pytest.fixture
    def version_1_file(self, tmp_path: Path) -> Path:
        """A version-1 file in WAL mode, holding a key, a counter and a stream record."""
        path = tmp_path / "old.sqlite3"
        with closing(sqlite3.connect(path)) as conn, conn:
            conn.execute("PRAGMA journal_mode = WAL")
            for statement in _VERSION_1_SCHEMA:
                conn.execute(statement)
            conn.execute("INSERT INTO kv VALUES ('dedup:a', 'v', NULL), ('hits', '41', NULL)")
            conn.execute("INSERT INTO streams (stream, record) VALUES ('history', 'r0')")
        return path

    def test_version_1_file_migrates_in_place(self, version_1_file: Path) -> None:
        """Opening a version-1 file adds deadlines and queues and keeps every old row."""
        store = _open(version_1_file)
        try:
            assert store.get("dedup:a") == "v"
            assert store.incr("hits") == 42
            assert store.tail("history", 5) == ["r0"]
            store.schedule("jobs", "m", 5.0)
            assert store.due("jobs", 5.0, 10) == [("m", 5.0)]
            store.push("q", "r")
            assert store.pop("q", 10) == ["r"]
        finally:
            store.close()
        version = _query(version_1_file, "SELECT value FROM meta WHERE key = 'schema_version'")
        assert version == [(str(SCHEMA_VERSION),)] == [("2",)]
        names = {row[0] for row in _query(version_1_file, "SELECT name FROM sqlite_master")}
        assert {"deadlines", "deadlines_idx_at", "queues", "queues_queue_id"} <= names

    def test_migrated_file_matches_a_new_one(self, version_1_file: Path, tmp_path: Path) -> None:
        """A migrated file ends with the same tables and indexes as one created fresh."""
        fresh = tmp_path / "fresh.sqlite3"
        _open(fresh).close()
        _open(version_1_file).close()
        schema = "SELECT type, name, tbl_name FROM sqlite_master ORDER BY name"
        assert _query(version_1_file, schema) == _query(fresh, schema)

    def test_reopening_a_migrated_file_changes_nothing(self, version_1_file: Path) -> None:
        """A second opening finds version 2 and runs no migration again."""
        _open(version_1_file).close()
        before = _query(version_1_file, "SELECT sql FROM sqlite_master ORDER BY name")
        store = _open(version_1_file)
        try:
            assert store.get("hits") == "41"
        finally:
            store.close()
        assert _query(version_1_file, "SELECT sql FROM sqlite_master ORDER BY name") == before


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
