"""The SQLite store and its file: a lock held by another process, a full disk, and the file
deleted or replaced under a running process (with the -wal and -shm files it leaves)."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from chaperone._clock import ManualClock
from chaperone._exceptions import StoreError
from chaperone.store import SQLiteStore, open_store
from chaperone.store._sqlite import _MIGRATIONS, DEFAULT_BUSY_TIMEOUT_S
from chaperone.store._sqlite_file import SIDECAR_SUFFIXES, file_identity, sidecar_identities
from helpers.store_faults import WriteLock, fill_disk, in_another_process, small_disk

_WRITE = """
import sys
from chaperone._clock import SystemClock
from chaperone.store import open_store
store = open_store(sys.argv[1], SystemClock())
store.set(sys.argv[2], sys.argv[3])
print(store.get(sys.argv[2]))
store.close()
"""
"""Another process opening the store by URL and setting a key."""


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "store.sqlite3"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store(path: Path, clock: ManualClock) -> Iterator[SQLiteStore]:
    """A store on ``path`` that waits a fifth of a second for a lock."""
    opened = SQLiteStore(path, clock, f"sqlite:///{path}", busy_timeout=0.2)
    yield opened
    opened.close()


def _beside(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def _integrity(path: Path) -> list[tuple[str]]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute("PRAGMA integrity_check").fetchall()


class TestBusyTimeout:
    def test_default_is_ten_seconds(self, path: Path, clock: ManualClock) -> None:
        """Without a busy timeout the store waits ten seconds, as it always has."""
        opened = open_store(f"sqlite:///{path}", clock)
        try:
            assert isinstance(opened, SQLiteStore)
            assert opened.busy_timeout == DEFAULT_BUSY_TIMEOUT_S == 10.0
        finally:
            opened.close()

    def test_a_lock_held_past_the_timeout_fails_the_write(
        self, store: SQLiteStore, path: Path
    ) -> None:
        """A write waits the store's busy timeout for another process's lock, not ten
        seconds, then raises StoreError; reads go on meanwhile."""
        store.set("k", "v")
        with WriteLock(path):
            started = time.monotonic()
            with pytest.raises(StoreError, match="database is locked"):
                store.set("k", "w")
            waited = time.monotonic() - started
            assert store.get("k") == "v"
        assert 0.2 <= waited < 5.0
        store.set("k", "w")
        assert store.get("k") == "w"

    def test_open_store_passes_it_on(self, path: Path, clock: ManualClock) -> None:
        """open_store's busy_timeout reaches the SQLite store."""
        opened = open_store(f"sqlite:///{path}", clock, busy_timeout=0.3)
        try:
            assert isinstance(opened, SQLiteStore)
            assert opened.busy_timeout == 0.3
        finally:
            opened.close()


class TestOpeningWhileLocked:
    def test_an_up_to_date_file_opens_at_once(self, path: Path, clock: ManualClock) -> None:
        """Opening a file whose schema is current takes no write lock, so another
        process's lock does not delay it (a job's start is never held up)."""
        SQLiteStore(path, clock, f"sqlite:///{path}").set("k", "v")
        with WriteLock(path):
            started = time.monotonic()
            opened = SQLiteStore(path, clock, f"sqlite:///{path}", busy_timeout=30)
            took = time.monotonic() - started
            try:
                assert opened.get("k") == "v"
            finally:
                opened.close()
        assert took < 5.0

    def test_a_file_to_migrate_waits_for_the_lock(self, path: Path, clock: ManualClock) -> None:
        """A file that needs a migration takes the write lock, so it waits, and fails
        after the busy timeout."""
        with closing(sqlite3.connect(path)) as conn, conn:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            for statement in _MIGRATIONS[0]:
                conn.execute(statement)
            conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        with WriteLock(path), pytest.raises(StoreError, match="database is locked"):
            SQLiteStore(path, clock, f"sqlite:///{path}", busy_timeout=0.2)
        opened = SQLiteStore(path, clock, f"sqlite:///{path}", busy_timeout=0.2)
        opened.push("q", "r")  # the migration to version 2 happened
        opened.close()


class TestFullDisk:
    def test_a_full_disk_is_a_store_error(self, tmp_path: Path, clock: ManualClock) -> None:
        """Writes to a store on a full disk raise StoreError saying so; reads go on, and
        writes work again once there is room."""
        with small_disk(tmp_path / "disk") as disk:
            path = disk / "store.sqlite3"
            store = SQLiteStore(path, clock, f"sqlite:///{path}", busy_timeout=0.2)
            try:
                store.set("k", "v")
                filler = fill_disk(disk)
                failure = None
                for index in range(1000):  # the WAL may still have room for a few pages
                    try:
                        store.set(f"big{index}", "x" * 50_000)
                    except StoreError as exc:
                        failure = exc
                        break
                assert failure is not None
                assert "database or disk is full" in str(failure)
                assert str(path) in str(failure)
                assert store.get("k") == "v"
                filler.unlink()
                store.set("after", "v")
                assert store.get("after") == "v"
            finally:
                store.close()


class TestFileReplaced:
    def test_a_deleted_file_is_found_within_a_second(
        self, store: SQLiteStore, path: Path, clock: ManualClock
    ) -> None:
        """Within a second of the clock the store finds its file gone, says so, and the
        next operation opens a new file at the path."""
        store.set("k", "v")
        path.unlink()
        clock.advance(0.5)
        assert store.get("k") == "v"  # not compared yet: still the old file
        clock.advance(0.5)
        with pytest.raises(StoreError, match=r"deleted or replaced .* \(no file is there now\)"):
            store.get("k")
        assert store.get("k") is None
        assert path.is_file()
        store.set("k", "new")
        assert SQLiteStore(path, clock, f"sqlite:///{path}").get("k") == "new"

    def test_a_replaced_file_is_found_and_the_new_one_used(
        self, store: SQLiteStore, path: Path, clock: ManualClock, tmp_path: Path
    ) -> None:
        """A file moved over the store's path is found; the store then works on it,
        without the old file's -wal and -shm."""
        store.set("old", "v")
        other_path = tmp_path / "other.sqlite3"
        other = SQLiteStore(other_path, clock, f"sqlite:///{other_path}")
        other.set("other", "v")
        other.close()
        old_sidecars = sidecar_identities(path)
        assert set(old_sidecars) == set(SIDECAR_SUFFIXES)
        os.replace(other_path, path)
        clock.advance(1)
        replaced = r"deleted or replaced .* \(another file is there now\)"
        with pytest.raises(StoreError, match=replaced):
            store.get("old")
        for suffix, identity in old_sidecars.items():
            assert file_identity(_beside(path, suffix)) != identity
        assert store.get_many(["old", "other"]) == {"other": "v"}
        assert _integrity(path) == [("ok",)]

    def test_another_process_on_the_new_file_is_seen(
        self, store: SQLiteStore, path: Path, clock: ManualClock
    ) -> None:
        """After the file is deleted, a process that opens the path and writes is seen by
        the first once it found out: never two processes silently on two files. The old
        file's -wal and -shm, left beside the missing file, are not read as the new one's."""
        store.set("old", "v")
        path.unlink()
        assert all(_beside(path, suffix).exists() for suffix in SIDECAR_SUFFIXES)
        printed = in_another_process(_WRITE, f"sqlite:///{path}", "theirs", "written")
        assert printed.splitlines()[-1] == "written"
        assert _integrity(path) == [("ok",)]
        clock.advance(1)
        with pytest.raises(StoreError, match="deleted or replaced"):
            store.get("theirs")
        assert store.get_many(["old", "theirs"]) == {"theirs": "written"}
        store.set("mine", "v")
        printed = in_another_process(_WRITE, f"sqlite:///{path}", "theirs", "again")
        assert printed.splitlines()[-1] == "again"
        assert store.get_many(["mine", "theirs"]) == {"mine": "v", "theirs": "again"}

    def test_leftovers_beside_a_missing_file_are_removed_at_open(
        self, path: Path, clock: ManualClock
    ) -> None:
        """A -wal and -shm with no database beside them are removed (and said to be)
        before a new database is created at the path."""
        for suffix in SIDECAR_SUFFIXES:
            _beside(path, suffix).write_bytes(b"left over " * 100)
        with capture_logs() as logs:
            store = SQLiteStore(path, clock, f"sqlite:///{path}")
        removed = [log["file"] for log in logs if log["event"].startswith("removed a file")]
        assert removed == [str(_beside(path, suffix)) for suffix in SIDECAR_SUFFIXES]
        try:
            store.set("k", "v")
            assert store.get("k") == "v"
        finally:
            store.close()
        assert _integrity(path) == [("ok",)]

    def test_sidecars_of_a_live_file_are_kept(
        self, store: SQLiteStore, path: Path, clock: ManualClock
    ) -> None:
        """A second store opening a file in use leaves its -wal and -shm alone."""
        store.set("k", "v")
        before = sidecar_identities(path)
        second = SQLiteStore(path, clock, f"sqlite:///{path}")
        try:
            assert sidecar_identities(path) == before
            assert second.get("k") == "v"
        finally:
            second.close()

    def test_a_leftover_that_cannot_be_removed_refuses_to_open(
        self, path: Path, clock: ManualClock
    ) -> None:
        """A leftover SQLite would read but that cannot be removed (here a directory)
        fails the opening with StoreError naming it, rather than mixing two databases."""
        leftover = _beside(path, "-shm")
        leftover.mkdir()
        (leftover / "inside").write_text("x")
        with pytest.raises(StoreError, match="cannot remove") as caught:
            SQLiteStore(path, clock, f"sqlite:///{path}")
        assert str(leftover) in str(caught.value)

    def test_a_closed_store_stays_closed(
        self, store: SQLiteStore, path: Path, clock: ManualClock
    ) -> None:
        """Closing is not a lost file: a closed store never opens again."""
        store.close()
        path.unlink()
        clock.advance(5)
        with pytest.raises(StoreError, match="closed"):
            store.get("k")
        assert not path.exists()
