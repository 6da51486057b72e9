"""The SQLite store: one file shared by every process on the machine.

The file runs in WAL mode with ``synchronous=NORMAL`` (a crash may lose the last few
writes, never corrupt the file) and an operation waits up to ``busy_timeout`` seconds
(ten by default) for another writer's lock. Every operation is either one statement or
one ``BEGIN IMMEDIATE`` transaction, so it is atomic across threads and processes. The
``meta`` table records the schema version so a later Chaperone can migrate the file in
place; opening a file that is up to date only reads it, so it never waits for a lock.

**A file deleted or replaced.** At most once a second (of the store's clock) an operation
compares the file at the path with the one the connection is on (device and inode). When
they differ, the connection is closed, the ``-wal`` and ``-shm`` files the old one left
are removed (see :mod:`chaperone.store._sqlite_file`), and the operation raises
StoreError saying so; the next operation opens the file at the path, creating it when
missing. A process never goes on writing to a file nobody else can see.
"""

from __future__ import annotations

import functools
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import structlog

from chaperone._clock import Clock
from chaperone._exceptions import StoreError
from chaperone.store._memory import (
    INT64_MAX,
    INT64_MIN,
    _check_amount,
    _check_at,
    _check_limit,
    _check_max_len,
    _check_sum,
    _check_ttl,
    _check_until,
    _parse_counter,
)
from chaperone.store._sqlite_file import (
    FileIdentity,
    file_identity,
    remove_stale_sidecars,
    sidecar_identities,
)

__all__ = ["DEFAULT_BUSY_TIMEOUT_S", "SQLiteStore"]

_log = structlog.get_logger("chaperone.store")

SCHEMA_VERSION = 3
"""The schema version this code writes; ``meta.schema_version`` in the file."""

DEFAULT_BUSY_TIMEOUT_S = 10.0
"""Seconds an operation waits for another connection's write lock unless told otherwise."""
_IDENTITY_CHECK_S = 1.0
"""Seconds of the store's clock between two comparisons of the file with the path's."""
_WAL_RETRY_S = 0.005
"""Pause between tries to switch a file to WAL mode while another connection holds it."""
_PURGE_EVERY = 256
"""Delete expired rows after this many writes, so the file does not grow forever."""

_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 0 -> 1: the first schema.
    (
        """
        CREATE TABLE IF NOT EXISTS kv (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            expires_at REAL
        )
        """,
        "CREATE INDEX IF NOT EXISTS kv_expires_at ON kv (expires_at)",
        """
        CREATE TABLE IF NOT EXISTS streams (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            stream TEXT NOT NULL,
            record TEXT NOT NULL
        )
        """,
        "CREATE INDEX IF NOT EXISTS streams_stream_id ON streams (stream, id)",
    ),
    # 1 -> 2: deadline indexes and FIFO queues.
    (
        """
        CREATE TABLE IF NOT EXISTS deadlines (
            idx TEXT NOT NULL,
            member TEXT NOT NULL,
            at REAL NOT NULL,
            PRIMARY KEY (idx, member)
        )
        """,
        # (idx, at) serves due(); member as well makes it covering and orders ties.
        "CREATE INDEX IF NOT EXISTS deadlines_idx_at ON deadlines (idx, at, member)",
        """
        CREATE TABLE IF NOT EXISTS queues (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            queue TEXT NOT NULL,
            record TEXT NOT NULL
        )
        """,
        "CREATE INDEX IF NOT EXISTS queues_queue_id ON queues (queue, id)",
    ),
    # 2 -> 3: each stream's record count, so append() trims without counting.
    (
        """
        CREATE TABLE IF NOT EXISTS stream_sizes (
            stream TEXT PRIMARY KEY,
            size INTEGER NOT NULL
        ) WITHOUT ROWID
        """,
        """
        INSERT INTO stream_sizes (stream, size)
        SELECT stream, count(*) FROM streams GROUP BY stream
        """,
    ),
)
"""``_MIGRATIONS[n]`` takes a file from schema version ``n`` to ``n + 1``."""

_UNEXPIRED = "(expires_at IS NULL OR expires_at > :now)"

_SET_IF_ABSENT = """
    INSERT INTO kv (key, value, expires_at) VALUES (:key, :value, :expires_at)
    ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at
    WHERE kv.expires_at IS NOT NULL AND kv.expires_at <= :now
"""

_SET = """
    INSERT INTO kv (key, value, expires_at) VALUES (:key, :value, :expires_at)
    ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at
"""

_INCR = """
    INSERT INTO kv (key, value, expires_at) VALUES (:key, CAST(:amount AS TEXT), :expires_at)
    ON CONFLICT (key) DO UPDATE SET
        value = CASE WHEN kv.expires_at <= :now THEN excluded.value
                ELSE CAST(CAST(kv.value AS INTEGER) + :amount AS TEXT) END,
        expires_at = CASE WHEN kv.expires_at <= :now THEN excluded.expires_at
                     ELSE kv.expires_at END
    WHERE kv.expires_at <= :now OR (
        CAST(CAST(kv.value AS INTEGER) AS TEXT) = kv.value
        AND CASE WHEN :amount >= 0 THEN CAST(kv.value AS INTEGER) <= :max - :amount
                 ELSE CAST(kv.value AS INTEGER) >= :min - :amount END
    )
    RETURNING value
"""
"""Add to a counter in one statement; no row comes back when the live value is not a
canonical 64-bit integer (the round trip through INTEGER changes it) or the sum would
leave 64 bits (checked without computing it, since SQLite turns an overflow into REAL)."""

_INCR_ATTEMPTS = 5
"""Rereads after a refused ``incr`` whose value another writer changed in between."""

_GROW_STREAM = """
    INSERT INTO stream_sizes (stream, size) VALUES (:stream, 1)
    ON CONFLICT (stream) DO UPDATE SET size = stream_sizes.size + 1
    RETURNING size
"""
"""Count one more record in a stream; returns its size with that record."""

_TRIM_STREAM = """
    DELETE FROM streams WHERE id IN (
        SELECT id FROM streams WHERE stream = :stream ORDER BY id LIMIT :excess
    )
"""
"""Delete a stream's ``excess`` oldest records: a range read from the oldest end of the
``streams_stream_id`` index, O(log n + excess) however long the stream is."""

_GET_MANY_CHUNK = 500
"""Keys per ``IN (...)`` list, well under SQLite's limit on bound parameters."""

_SCHEDULE = """
    INSERT INTO deadlines (idx, member, at) VALUES (:index, :member, :at)
    ON CONFLICT (idx, member) DO UPDATE SET at = excluded.at
"""

_DUE = """
    SELECT member, at FROM deadlines
    WHERE idx = :index AND at <= :until
    ORDER BY at, member
    LIMIT :limit
"""
"""The query behind ``due()``: a range read of the ``deadlines_idx_at`` index."""


class SQLiteStore:
    """A :class:`~chaperone.store.Store` in a SQLite file, safe across threads and processes.

    Opening creates the file and its parent directory when missing. Any failure to open
    (a directory that cannot be created, a file that is not a database, a schema written
    by a newer Chaperone) raises :class:`~chaperone.StoreError` naming the path; so does
    any SQLite failure later (a full disk: "database or disk is full"; a lock held past
    ``busy_timeout`` seconds: "database is locked"), and an operation that finds the file
    deleted or replaced. Expiry is judged with ``clock.timestamp()``.
    """

    def __init__(
        self,
        path: Path,
        clock: Clock,
        url: str,
        *,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT_S,
    ) -> None:
        self.url: str = url
        """Where the store lives, as given to :func:`chaperone.store.open_store`."""
        self.path: Path = path
        """The database file."""
        self.busy_timeout: float = busy_timeout
        """Seconds an operation waits for another connection's write lock."""
        self._clock = clock
        self._lock = threading.Lock()
        self._writes = 0
        self._closed = False
        self._conn: sqlite3.Connection | None = None
        self._identity: FileIdentity | None = None
        self._sidecars: dict[str, FileIdentity] = {}
        self._checked_at = 0.0
        self._open()

    def __repr__(self) -> str:
        return f"SQLiteStore(path={str(self.path)!r})"

    def set_if_absent(self, key: str, value: str, ttl: float) -> bool:
        """Set ``key`` to ``value`` for ``ttl`` seconds unless it holds an unexpired value.

        One ``INSERT … ON CONFLICT DO UPDATE … WHERE expired`` statement, so of any number
        of concurrent callers on the same file exactly one gets ``True``.
        """
        _check_ttl(ttl)
        with self._using("set a key") as conn:
            now = self._clock.timestamp()
            params = {"key": key, "value": value, "expires_at": now + ttl, "now": now}
            won = conn.execute(_SET_IF_ABSENT, params).rowcount == 1
            self._wrote(conn)
            return won

    def get(self, key: str) -> str | None:
        """Return the unexpired value of ``key``, or None."""
        with self._using("read a key") as conn:
            row = conn.execute(
                f"SELECT value FROM kv WHERE key = :key AND {_UNEXPIRED}",  # noqa: S608
                {"key": key, "now": self._clock.timestamp()},
            ).fetchone()
            return None if row is None else str(row[0])

    def set(self, key: str, value: str, ttl: float | None = None) -> None:
        """Set ``key`` to ``value``, expiring after ``ttl`` seconds (never when None)."""
        if ttl is not None:
            _check_ttl(ttl)
        with self._using("set a key") as conn:
            expires_at = None if ttl is None else self._clock.timestamp() + ttl
            conn.execute(_SET, {"key": key, "value": value, "expires_at": expires_at})
            self._wrote(conn)

    def delete(self, key: str) -> bool:
        """Delete ``key``; return whether an unexpired value was there."""
        with self._using("delete a key") as conn, _transaction(conn):
            params = {"key": key, "now": self._clock.timestamp()}
            live = conn.execute(
                f"SELECT count(*) FROM kv WHERE key = :key AND {_UNEXPIRED}",  # noqa: S608
                params,
            ).fetchone()[0]
            conn.execute("DELETE FROM kv WHERE key = :key", params)
            self._wrote(conn)
            return bool(live)

    def delete_prefix(self, prefix: str) -> int:
        """Delete every key that starts with ``prefix``; return how many unexpired ones went."""
        where, params = _prefix_clause(prefix)
        with self._using("delete keys") as conn, _transaction(conn):
            params["now"] = self._clock.timestamp()
            live = conn.execute(
                f"SELECT count(*) FROM kv WHERE {where} AND {_UNEXPIRED}",  # noqa: S608
                params,
            ).fetchone()[0]
            conn.execute(f"DELETE FROM kv WHERE {where}", params)  # noqa: S608
            self._wrote(conn)
            return int(live)

    def keys(self, prefix: str) -> list[str]:
        """Return the unexpired keys that start with ``prefix``, sorted."""
        where, params = _prefix_clause(prefix)
        params["now"] = self._clock.timestamp()
        with self._using("list keys") as conn:
            rows = conn.execute(
                f"SELECT key FROM kv WHERE {where} AND {_UNEXPIRED} ORDER BY key",  # noqa: S608
                params,
            ).fetchall()
            return [str(row[0]) for row in rows]

    def append(self, stream: str, record: str, max_len: int) -> None:
        """Append ``record`` to ``stream``, keeping at most the newest ``max_len`` records.

        One ``BEGIN IMMEDIATE`` transaction inserts the record, adds one to the stream's
        size in ``stream_sizes`` and, when that passes ``max_len``, deletes the oldest
        records over it: O(log n) amortised, whatever ``max_len`` is.
        """
        _check_max_len(max_len)
        params = {"stream": stream, "record": record}
        with self._using("append to a stream") as conn, _transaction(conn):
            conn.execute("INSERT INTO streams (stream, record) VALUES (:stream, :record)", params)
            size = int(conn.execute(_GROW_STREAM, params).fetchone()[0])
            if size > max_len:
                deleted = conn.execute(
                    _TRIM_STREAM, {"stream": stream, "excess": size - max_len}
                ).rowcount
                conn.execute(
                    "UPDATE stream_sizes SET size = size - :deleted WHERE stream = :stream",
                    {"stream": stream, "deleted": deleted},
                )
            self._wrote(conn)

    def tail(self, stream: str, limit: int) -> list[str]:
        """Return up to ``limit`` records of ``stream``, newest first."""
        _check_limit(limit)
        with self._using("read a stream") as conn:
            rows = conn.execute(
                "SELECT record FROM streams WHERE stream = :stream ORDER BY id DESC LIMIT :limit",
                {"stream": stream, "limit": limit},
            ).fetchall()
            return [str(row[0]) for row in rows]

    def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        """Add ``amount`` to the integer at ``key`` (0 when absent or expired); return the sum.

        One ``INSERT … ON CONFLICT DO UPDATE … RETURNING`` statement, so concurrent calls
        from any number of processes add up exactly. ``ttl`` sets the expiry only when
        this call creates the key. A live value that is not a 64-bit integer in canonical
        form, or a sum outside that range, raises ValueError naming the key.
        """
        _check_amount(amount)
        if ttl is not None:
            _check_ttl(ttl)
        with self._using("add to a counter") as conn:
            for _ in range(_INCR_ATTEMPTS):
                now = self._clock.timestamp()
                params = {
                    "key": key,
                    "amount": amount,
                    "expires_at": None if ttl is None else now + ttl,
                    "now": now,
                    "min": INT64_MIN,
                    "max": INT64_MAX,
                }
                row = conn.execute(_INCR, params).fetchone()
                if row is not None:
                    self._wrote(conn)
                    return int(row[0])
                # Refused: find out why, to say so. Raises unless the value changed since.
                current = conn.execute(
                    f"SELECT value FROM kv WHERE key = :key AND {_UNEXPIRED}",  # noqa: S608
                    {"key": key, "now": self._clock.timestamp()},
                ).fetchone()
                if current is not None:
                    _check_sum(key, amount, _parse_counter(key, str(current[0])) + amount)
            raise StoreError(
                f"the SQLite store {self.path} could not add to the counter at key {key!r}: "
                f"other writers kept changing it ({_INCR_ATTEMPTS} attempts)"
            )

    def get_many(self, keys: list[str]) -> dict[str, str]:
        """Return the unexpired values of ``keys`` that exist, read from one snapshot."""
        unique = list(dict.fromkeys(keys))
        with self._using("read keys") as conn:
            if not unique:
                return {}
            now = self._clock.timestamp()
            found: dict[str, str] = {}
            if len(unique) <= _GET_MANY_CHUNK:
                # One statement reads one snapshot: no transaction to open and close (a
                # closed circuit breaker does this read on every call).
                rows = conn.execute(_get_many_query(len(unique)), [*unique, now]).fetchall()
                return {str(key): str(value) for key, value in rows}
            conn.execute("BEGIN")  # one read snapshot across the chunks
            try:
                for start in range(0, len(unique), _GET_MANY_CHUNK):
                    chunk = unique[start : start + _GET_MANY_CHUNK]
                    rows = conn.execute(_get_many_query(len(chunk)), [*chunk, now]).fetchall()
                    found.update((str(key), str(value)) for key, value in rows)
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")
            return found

    def schedule(self, index: str, member: str, at: float) -> None:
        """Put ``member`` in the deadline index ``index`` at time ``at``, replacing its old time."""
        _check_at(at)
        with self._using("schedule a deadline") as conn:
            conn.execute(_SCHEDULE, {"index": index, "member": member, "at": float(at)})

    def unschedule(self, index: str, member: str) -> bool:
        """Take ``member`` out of ``index``; return whether it was there."""
        with self._using("unschedule a deadline") as conn:
            deleted = conn.execute(
                "DELETE FROM deadlines WHERE idx = :index AND member = :member",
                {"index": index, "member": member},
            ).rowcount
            return deleted == 1

    def due(self, index: str, until: float, limit: int) -> list[tuple[str, float]]:
        """Return up to ``limit`` members of ``index`` due by ``until``, earliest first.

        Members due at the same time come in member order. One range read of the
        ``(idx, at, member)`` index: O(log n + k).
        """
        _check_until(until)
        _check_limit(limit)
        with self._using("read deadlines") as conn:
            rows = conn.execute(_DUE, {"index": index, "until": until, "limit": limit}).fetchall()
            return [(str(member), float(at)) for member, at in rows]

    def push(self, queue: str, record: str) -> None:
        """Append ``record`` to the FIFO ``queue``."""
        with self._using("push to a queue") as conn:
            conn.execute(
                "INSERT INTO queues (queue, record) VALUES (:queue, :record)",
                {"queue": queue, "record": record},
            )

    def pop(self, queue: str, limit: int) -> list[str]:
        """Remove and return up to ``limit`` of the oldest records of ``queue``, oldest first.

        One ``BEGIN IMMEDIATE`` transaction reads the oldest ids and deletes them, so of
        processes popping at once each record goes to exactly one.
        """
        _check_limit(limit)
        with self._using("pop from a queue") as conn:
            if limit == 0:
                return []
            with _transaction(conn):
                rows = conn.execute(
                    "SELECT id, record FROM queues WHERE queue = :queue ORDER BY id LIMIT :limit",
                    {"queue": queue, "limit": limit},
                ).fetchall()
                if rows:
                    conn.execute(
                        "DELETE FROM queues WHERE queue = :queue AND id <= :last",
                        {"queue": queue, "last": rows[-1][0]},
                    )
            return [str(record) for _, record in rows]

    def close(self) -> None:
        """Close the connection. The store is unusable afterwards; closing twice is harmless."""
        with self._lock:
            self._closed = True
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()

    @contextmanager
    def _using(self, action: str) -> Iterator[sqlite3.Connection]:
        """Hold the lock and the open connection; turn SQLite failures into StoreError."""
        with self._lock:
            conn = self._connection()
            try:
                yield conn
            except sqlite3.Error as exc:
                raise StoreError(f"the SQLite store {self.path} could not {action}: {exc}") from exc

    def _connection(self) -> sqlite3.Connection:
        """The connection, opened again after the file was found deleted or replaced, and
        checked against the path's file when a check is due.
        """
        if self._closed:
            raise StoreError(f"the SQLite store {self.path} is closed")
        if self._conn is None:
            conn = self._open()
            _log.info("opened the SQLite store again", path=str(self.path))
            return conn
        now = self._clock.timestamp()
        if 0 <= now - self._checked_at < _IDENTITY_CHECK_S:
            return self._conn
        self._checked_at = now
        current = file_identity(self.path)
        if current is not None and current == self._identity:
            return self._conn
        conn, self._conn = self._conn, None
        now_there = "no file is there now" if current is None else "another file is there now"
        try:
            # While the old connection is open, its -wal and -shm cannot have been
            # replaced by new files with the same inode numbers.
            remove_stale_sidecars(self.path, self._sidecars)
        finally:
            conn.close()
        raise StoreError(
            f"the SQLite store {self.path} was deleted or replaced since this process "
            f"opened it ({now_there}); the connection to the old file is closed, and the "
            "next operation opens the file at that path"
        )

    def _open(self) -> sqlite3.Connection:
        """Open the file at the path (creating it when missing) and remember which it is."""
        conn = _connect(self.path, self.busy_timeout)
        self._conn = conn
        self._identity = file_identity(self.path)
        self._sidecars = sidecar_identities(self.path)
        self._checked_at = self._clock.timestamp()
        self._purge_without_waiting(conn)
        return conn

    def _wrote(self, conn: sqlite3.Connection) -> None:
        self._writes += 1
        if self._writes % _PURGE_EVERY == 0:
            self._purge(conn)

    def _purge(self, conn: sqlite3.Connection) -> None:
        """Delete expired rows. Housekeeping only: a failure here fails no caller."""
        try:
            conn.execute(
                "DELETE FROM kv WHERE expires_at IS NOT NULL AND expires_at <= :now",
                {"now": self._clock.timestamp()},
            )
        except sqlite3.Error:
            return  # the next purge tries again; expired rows are invisible meanwhile

    def _purge_without_waiting(self, conn: sqlite3.Connection) -> None:
        """Purge if the write lock is free now: opening never waits for another writer."""
        try:
            conn.execute("PRAGMA busy_timeout = 0")
            try:
                self._purge(conn)
            finally:
                conn.execute(f"PRAGMA busy_timeout = {_busy_ms(self.busy_timeout)}")
        except sqlite3.Error:
            return  # housekeeping only, like the purge itself


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """Run the block in one write transaction, taking the write lock up front."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _connect(path: Path, busy_timeout: float) -> sqlite3.Connection:
    """Open (creating when missing) and migrate the database at ``path``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"cannot create the directory {path.parent} for the SQLite store {path}: {exc}"
        ) from exc
    remove_stale_sidecars(path)
    try:
        conn = sqlite3.connect(
            path,
            timeout=busy_timeout,
            isolation_level=None,
            check_same_thread=False,
        )
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open the SQLite store {path}: {exc}") from exc
    try:
        conn.execute(f"PRAGMA busy_timeout = {_busy_ms(busy_timeout)}")
        _enter_wal(conn, busy_timeout)
        conn.execute("PRAGMA synchronous = NORMAL")
        _migrate(conn, path)
    except sqlite3.Error as exc:
        conn.close()
        raise StoreError(f"cannot open the SQLite store {path}: {exc}") from exc
    except BaseException:
        conn.close()
        raise
    return conn


def _busy_ms(busy_timeout: float) -> int:
    return int(busy_timeout * 1000)


def _enter_wal(conn: sqlite3.Connection, busy_timeout: float) -> None:
    """Put the file in WAL mode, trying again while another connection is doing the same.

    Two processes switching a new file at once can deadlock on its rollback-journal locks
    (each reads, then wants to write), so SQLite fails one at once with "database is
    locked" instead of calling the busy handler. The failed statement releases its locks,
    so a later try finds the file in WAL mode once the other has switched it.
    """
    deadline = time.monotonic() + busy_timeout
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError as exc:
            busy = exc.sqlite_errorcode == sqlite3.SQLITE_BUSY
            if not busy or time.monotonic() >= deadline:
                raise
            time.sleep(_WAL_RETRY_S)
        else:
            return


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Bring the file's schema up to :data:`SCHEMA_VERSION`, refusing newer ones.

    The version is read first, without a transaction: a file that is up to date opens
    without waiting for the write lock another process may hold. Only a migration takes
    it, and reads the version again under it (another process may have migrated first).
    """
    if _schema_version(conn, path) == SCHEMA_VERSION:
        return
    with _transaction(conn):
        conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        version = _schema_version(conn, path)
        for statements in _MIGRATIONS[version:]:
            for statement in statements:
                conn.execute(statement)
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', :version) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            {"version": str(SCHEMA_VERSION)},
        )


def _schema_version(conn: sqlite3.Connection, path: Path) -> int:
    """The file's schema version (0 for a new file); StoreError for one that is malformed
    or newer than this code.
    """
    has_meta = conn.execute(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
    ).fetchone()[0]
    if not has_meta:
        return 0
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    try:
        version = 0 if row is None else int(row[0])
    except ValueError:
        raise StoreError(
            f"the SQLite store {path} has a malformed schema version {row[0]!r}"
        ) from None
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"the SQLite store {path} has schema version {version}, newer than the "
            f"{SCHEMA_VERSION} this Chaperone understands; upgrade Chaperone or use "
            "another file"
        )
    return version


@functools.lru_cache(maxsize=64)
def _get_many_query(count: int) -> str:
    """The query behind ``get_many()`` for ``count`` keys, then the time."""
    marks = ", ".join("?" * count)
    return (
        f"SELECT key, value FROM kv WHERE key IN ({marks}) "  # noqa: S608
        "AND (expires_at IS NULL OR expires_at > ?)"
    )


def _prefix_clause(prefix: str) -> tuple[str, dict[str, str | float]]:
    """Return a WHERE clause selecting keys that start with ``prefix``, and its parameters.

    A range on the primary key rather than ``LIKE``: exact (no wildcards, case-sensitive,
    NUL-safe) and served by the index. UTF-8 byte order is code point order, so the range
    ``[prefix, upper)`` holds exactly the keys that start with ``prefix``.
    """
    upper = _successor(prefix)
    if upper is None:
        return "key >= :lower", {"lower": prefix}
    return "key >= :lower AND key < :upper", {"lower": prefix, "upper": upper}


def _successor(prefix: str) -> str | None:
    """Return the smallest string above every string that starts with ``prefix``.

    None when there is none (empty prefix, or one made only of the highest code point).
    """
    chars = list(prefix)
    while chars:
        last = ord(chars.pop())
        if last == 0x10FFFF:
            continue
        following = last + 1
        if 0xD800 <= following <= 0xDFFF:  # surrogates cannot be stored; skip them
            following = 0xE000
        return "".join(chars) + chr(following)
    return None
