"""The SQLite store as a file: shared by connections and processes, persistent, and how it opens."""

from __future__ import annotations

import multiprocessing
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from chaperone._clock import Clock, ManualClock
from chaperone._exceptions import StoreError
from chaperone.store import SQLiteStore
from chaperone.store._sqlite import _MIGRATIONS, SCHEMA_VERSION
from helpers.store_processes import AcrossProcessesChecks, Outcome, run_workers


def _open(path: Path, clock: Clock | None = None) -> SQLiteStore:
    return SQLiteStore(path, clock or ManualClock(), f"sqlite:///{path}")


def _query(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql).fetchall()


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    """One run of the workers, shared by the tests that check what it left behind; every
    worker opens the not-yet-existing file at once, and they meet before every key.
    """
    path = tmp_path_factory.mktemp("processes") / "shared.sqlite3"
    return run_workers(f"sqlite:///{path}", keys_per_round=1)


class TestAcrossProcesses(AcrossProcessesChecks):
    """Eight processes on one SQLite file."""


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
        assert version == [(str(SCHEMA_VERSION),)] == [("3",)]
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
        """A second opening finds the current version and runs no migration again."""
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
