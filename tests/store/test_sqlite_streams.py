"""The SQLite store's streams: the size each stream keeps in ``stream_sizes`` stays exact
across connections, processes and migrations, and trimming a full stream costs the same
however long the stream is allowed to be."""

from __future__ import annotations

import itertools
import os
import sqlite3
import subprocess
import sys
import textwrap
from collections import deque
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaperone._clock import ManualClock
from chaperone.store import SQLiteStore
from chaperone.store._sqlite import SCHEMA_VERSION


def _open(path: Path) -> SQLiteStore:
    return SQLiteStore(path, ManualClock(), f"sqlite:///{path}")


def _query(path: Path, sql: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql).fetchall()


def _sizes(path: Path) -> dict[str, int]:
    """What ``stream_sizes`` says each stream holds."""
    return {str(s): int(str(n)) for s, n in _query(path, "SELECT stream, size FROM stream_sizes")}


def _counts(path: Path) -> dict[str, int]:
    """How many records each stream really holds."""
    rows = _query(path, "SELECT stream, count(*) FROM streams GROUP BY stream")
    return {str(stream): int(str(count)) for stream, count in rows}


# --- property: sizes and records match a model of bounded deques ---------------------------


@attrs.define
class TwoConnections:
    """Two stores on one file for every example of the property test; each example takes
    fresh stream names from ``runs``."""

    path: Path
    stores: tuple[SQLiteStore, SQLiteStore]
    runs: Iterator[int]


@pytest.fixture(scope="module")
def two_connections(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoConnections]:
    path = tmp_path_factory.mktemp("streams") / "streams.sqlite3"
    first, second = _open(path), _open(path)
    yield TwoConnections(path, (first, second), itertools.count())
    first.close()
    second.close()


_appends = st.lists(
    st.tuples(st.sampled_from("abc"), st.integers(1, 6), st.sampled_from([0, 1])),
    max_size=60,
)
"""Appends as (stream, max_len, which of the two connections)."""


class TestSizesMatchTheModel:
    @settings(max_examples=120, deadline=None)
    @given(appends=_appends)
    def test_interleaved_appends_keep_sizes_exact(
        self, two_connections: TwoConnections, appends: list[tuple[str, int, int]]
    ) -> None:
        """Appends to several streams with varying max_len, through two connections, leave
        each stream with the records a deque of that max_len keeps, and its size with them."""
        run = next(two_connections.runs)
        model: dict[str, deque[str]] = {}
        for step, (name, max_len, which) in enumerate(appends):
            stream = f"run {run}: {name}"
            record = f"{step}"
            two_connections.stores[which].append(stream, record, max_len)
            kept = model.setdefault(stream, deque())
            kept.append(record)
            while len(kept) > max_len:
                kept.popleft()
            other = two_connections.stores[1 - which]
            assert other.tail(stream, 10) == list(reversed(kept)), (step, stream, max_len)
        prefix = f"run {run}: "
        sizes = {s: n for s, n in _sizes(two_connections.path).items() if s.startswith(prefix)}
        counts = {s: n for s, n in _counts(two_connections.path).items() if s.startswith(prefix)}
        assert sizes == counts == {stream: len(kept) for stream, kept in model.items()}


# --- trimming -------------------------------------------------------------------------------


def _vm_steps_per_append(store: SQLiteStore, stream: str, max_len: int) -> int:
    """SQLite virtual machine instructions one append to ``stream`` runs."""
    conn = store._conn
    assert conn is not None
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0  # go on

    conn.set_progress_handler(count, 1)
    try:
        store.append(stream, "new", max_len)
    finally:
        conn.set_progress_handler(None, 0)
    return steps


class TestTrim:
    def test_smaller_max_len_trims_many_at_once(self, tmp_path: Path) -> None:
        """An append with a much smaller max_len drops every older record over it at once,
        and the size follows."""
        path = tmp_path / "s.sqlite3"
        store = _open(path)
        try:
            for index in range(40):
                store.append("s", f"r{index}", max_len=100)
            store.append("s", "r40", max_len=3)
            assert store.tail("s", 100) == ["r40", "r39", "r38"]
            store.append("s", "r41", max_len=100)
            assert store.tail("s", 100) == ["r41", "r40", "r39", "r38"]
        finally:
            store.close()
        assert _sizes(path) == _counts(path) == {"s": 4}

    def test_full_stream_append_cost_does_not_grow_with_max_len(self, tmp_path: Path) -> None:
        """An append to a full stream of 6,000 records runs about as many SQLite
        instructions as one to a full stream of 60: the trim does not walk the stream."""
        path = tmp_path / "s.sqlite3"
        _write_version_2_file(path, {"long": 6000, "short": 60})
        store = _open(path)
        try:
            short = [_vm_steps_per_append(store, "short", 60) for _ in range(5)]
            long = [_vm_steps_per_append(store, "long", 6000) for _ in range(5)]
            assert len(store.tail("long", 7000)) == 6000
            assert len(store.tail("short", 100)) == 60
        finally:
            store.close()
        assert max(long) <= 2 * max(short), (long, short)
        assert _sizes(path) == _counts(path) == {"long": 6000, "short": 60}


# --- migration ------------------------------------------------------------------------------

_VERSION_2_SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires_at REAL)",
    "CREATE INDEX kv_expires_at ON kv (expires_at)",
    "CREATE TABLE streams ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, stream TEXT NOT NULL, record TEXT NOT NULL)",
    "CREATE INDEX streams_stream_id ON streams (stream, id)",
    "CREATE TABLE deadlines ("
    " idx TEXT NOT NULL, member TEXT NOT NULL, at REAL NOT NULL, PRIMARY KEY (idx, member))",
    "CREATE INDEX deadlines_idx_at ON deadlines (idx, at, member)",
    "CREATE TABLE queues ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, queue TEXT NOT NULL, record TEXT NOT NULL)",
    "CREATE INDEX queues_queue_id ON queues (queue, id)",
    "INSERT INTO meta VALUES ('schema_version', '2')",
)
"""A file as the schema-2 Chaperone wrote it (no stream sizes), frozen here."""


def _write_version_2_file(path: Path, streams: dict[str, int]) -> None:
    """A version-2 file in WAL mode holding ``streams[name]`` records ``name:0``... in each
    stream, appended in turn across the streams (so their ids interleave)."""
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("PRAGMA journal_mode = WAL")
        for statement in _VERSION_2_SCHEMA:
            conn.execute(statement)
        rows = [
            (name, f"{name}:{index}")
            for index in range(max(streams.values(), default=0))
            for name, count in streams.items()
            if index < count
        ]
        conn.executemany("INSERT INTO streams (stream, record) VALUES (?, ?)", rows)


class TestMigration:
    def test_version_2_file_gets_the_sizes_of_its_streams(self, tmp_path: Path) -> None:
        """Opening a version-2 file counts each stream's records into stream_sizes."""
        path = tmp_path / "old.sqlite3"
        _write_version_2_file(path, {"history": 7, "other": 3, "one": 1})
        _open(path).close()
        assert _query(path, "SELECT value FROM meta WHERE key = 'schema_version'") == [
            (str(SCHEMA_VERSION),)
        ]
        assert _sizes(path) == {"history": 7, "other": 3, "one": 1}

    def test_migrated_streams_trim_exactly(self, tmp_path: Path) -> None:
        """After migration, appends keep exactly the newest max_len of the old records."""
        path = tmp_path / "old.sqlite3"
        _write_version_2_file(path, {"history": 7, "other": 3})
        store = _open(path)
        try:
            store.append("history", "new", max_len=5)
            store.append("other", "new", max_len=10)
            assert store.tail("history", 10) == [
                "new",
                "history:6",
                "history:5",
                "history:4",
                "history:3",
            ]
            assert store.tail("other", 10) == ["new", "other:2", "other:1", "other:0"]
        finally:
            store.close()
        assert _sizes(path) == _counts(path) == {"history": 5, "other": 4}

    def test_version_1_file_gets_sizes_too(self, tmp_path: Path) -> None:
        """A version-1 file (streams, no deadlines or queues) migrates through every step
        and ends with its streams' sizes."""
        path = tmp_path / "v1.sqlite3"
        with closing(sqlite3.connect(path)) as conn, conn:
            for statement in _VERSION_2_SCHEMA:
                if "deadlines" not in statement and "queues" not in statement:
                    conn.execute(statement.replace("'2'", "'1'"))
            conn.executemany(
                "INSERT INTO streams (stream, record) VALUES ('h', ?)", [("a",), ("b",)]
            )
        store = _open(path)
        try:
            store.append("h", "c", max_len=2)
            assert store.tail("h", 5) == ["c", "b"]
        finally:
            store.close()
        assert _sizes(path) == {"h": 2}

    def test_migrated_file_matches_a_new_one(self, tmp_path: Path) -> None:
        """A migrated version-2 file ends with the same tables and indexes as a fresh one."""
        old, fresh = tmp_path / "old.sqlite3", tmp_path / "fresh.sqlite3"
        _write_version_2_file(old, {"h": 2})
        _open(old).close()
        _open(fresh).close()
        schema = "SELECT type, name, tbl_name FROM sqlite_master ORDER BY name"
        assert _query(old, schema) == _query(fresh, schema)
        sizes_table = "SELECT sql FROM sqlite_master WHERE name = 'stream_sizes'"
        assert _query(old, sizes_table) == _query(fresh, sizes_table) != []

    def test_reopening_does_not_count_again(self, tmp_path: Path) -> None:
        """A second opening of a migrated file leaves the sizes as appends left them."""
        path = tmp_path / "old.sqlite3"
        _write_version_2_file(path, {"h": 4})
        store = _open(path)
        store.append("h", "new", max_len=3)
        store.close()
        _open(path).close()
        assert _sizes(path) == _counts(path) == {"h": 3}


# --- processes ------------------------------------------------------------------------------

_WORKER = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    from chaperone._clock import SystemClock
    from chaperone.store import SQLiteStore

    path, name, appends, max_len = Path(sys.argv[1]), sys.argv[2], *map(int, sys.argv[3:5])
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        sys.exit("no go")
    store = SQLiteStore(path, SystemClock(), f"sqlite:///{path}")
    try:
        for index in range(appends):
            store.append("shared", f"{name}:{index}", max_len=max_len)
    finally:
        store.close()
    print("done", flush=True)
    """
)
"""A process that waits for "go", then opens the store and appends to a shared stream."""

_OPENER = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    from chaperone._clock import SystemClock
    from chaperone.store import SQLiteStore

    for name in sys.argv[1:]:
        print("ready", flush=True)
        if sys.stdin.readline().strip() != "go":
            sys.exit("no go")
        try:
            SQLiteStore(Path(name), SystemClock(), f"sqlite:///{name}").close()
        except Exception as exc:
            print(f"failed: {exc}", flush=True)
        else:
            print("opened", flush=True)
    """
)
"""A process that opens each file named on its command line when told "go"."""

OPENERS = 3
OPEN_ROUNDS = 30
APPENDS = 300
WRITERS = ("w0", "w1")
WORKER_TIMEOUT_S = 60.0


def _run_two_writers(path: Path, cwd: Path, max_len: int) -> None:
    """Start two writers, release them together and wait for both to finish cleanly."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAPERONE_")}
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(path), name, str(APPENDS), str(max_len)],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        for name in WRITERS
    ]
    try:
        for writer in writers:
            assert writer.stdout is not None
            assert writer.stdout.readline().strip() == "ready"
        for writer in writers:
            assert writer.stdin is not None
            writer.stdin.write("go\n")
            writer.stdin.flush()
        results = [writer.communicate(timeout=WORKER_TIMEOUT_S) for writer in writers]
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()
                writer.communicate(timeout=5)
    for writer, (out, err) in zip(writers, results, strict=True):
        assert writer.returncode == 0, err
        assert out.strip() == "done", (out, err)


def _check_shared(path: Path, first_id: int, max_len: int) -> None:
    """The stream "shared" holds exactly the newest ``max_len`` of the writers' appends,
    and its size says so.

    The appends commit one at a time and nothing else is appended meanwhile, so they took
    the ids ``first_id``, ``first_id + 1``... in commit order (AUTOINCREMENT never reuses
    one): the records kept must be those with the highest ``max_len`` of those ids.
    """
    rows = _query(path, "SELECT id, record FROM streams WHERE stream = 'shared' ORDER BY id")
    last_id = first_id + len(WRITERS) * APPENDS - 1
    assert [row[0] for row in rows] == list(range(last_id - max_len + 1, last_id + 1))
    records = [str(row[1]) for row in rows]
    for name in WRITERS:  # each writer's kept records are its newest, in order
        own = [int(r.split(":")[1]) for r in records if r.startswith(f"{name}:")]
        assert own == list(range(APPENDS - len(own), APPENDS)), (name, own)
    assert _sizes(path) == _counts(path) == {"shared": max_len}


class TestAcrossProcesses:
    def test_two_writers_on_a_new_file_end_with_exactly_max_len(self, tmp_path: Path) -> None:
        """Two processes creating the file and appending to one stream at once leave
        exactly its newest max_len records, and its size with them."""
        path = tmp_path / "s.sqlite3"
        _run_two_writers(path, tmp_path, max_len=50)
        _check_shared(path, first_id=1, max_len=50)

    def test_two_writers_migrating_a_version_2_file(self, tmp_path: Path) -> None:
        """Two processes opening a version-2 file at once migrate it once, and their
        appends then trim its old records away exactly.

        The stream fills up only after most appends, so a count that lost an update while
        both wrote would leave more than max_len records.
        """
        path = tmp_path / "old.sqlite3"
        _write_version_2_file(path, {"shared": 30})
        _run_two_writers(path, tmp_path, max_len=500)
        _check_shared(path, first_id=31, max_len=500)

    def test_processes_opening_a_new_file_at_once(self, tmp_path: Path) -> None:
        """Three processes released together to open each of several new files all open
        them: one that loses the race to switch a file to WAL mode waits for the winner."""
        paths = [tmp_path / f"new{index}.sqlite3" for index in range(OPEN_ROUNDS)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHAPERONE_")}
        openers = [
            subprocess.Popen(
                [sys.executable, "-c", _OPENER, *map(str, paths)],
                cwd=tmp_path,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                encoding="utf-8",
            )
            for _ in range(OPENERS)
        ]
        answers: list[list[str]] = []
        try:
            for _ in paths:
                for opener in openers:
                    assert opener.stdout is not None
                    assert opener.stdout.readline().strip() == "ready"
                for opener in openers:
                    assert opener.stdin is not None
                    opener.stdin.write("go\n")
                    opener.stdin.flush()
                answers.append(
                    [opener.stdout.readline().strip() for opener in openers if opener.stdout]
                )
            for opener in openers:
                opener.communicate(timeout=WORKER_TIMEOUT_S)
        finally:
            for opener in openers:
                if opener.poll() is None:
                    opener.kill()
                    opener.communicate(timeout=5)
        assert answers == [["opened"] * OPENERS] * OPEN_ROUNDS
        assert [opener.returncode for opener in openers] == [0] * OPENERS
        for path in paths:
            assert _query(path, "PRAGMA journal_mode") == [("wal",)]
