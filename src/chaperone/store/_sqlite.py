"""The SQLite store: one file shared by every process on the machine.

The file runs in WAL mode with ``synchronous=NORMAL`` (a crash may lose the last few
writes, never corrupt the file) and waits up to ten seconds for another writer's lock.
Every operation is either one statement or one ``BEGIN IMMEDIATE`` transaction, so it
is atomic across threads and processes. The ``meta`` table records the schema version
so a later Chaperone can migrate the file in place.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from chaperone._clock import Clock
from chaperone._exceptions import StoreError
from chaperone.store._memory import _check_limit, _check_max_len, _check_ttl

__all__ = ["SQLiteStore"]

SCHEMA_VERSION = 1
"""The schema version this code writes; ``meta.schema_version`` in the file."""

_BUSY_TIMEOUT_S = 10.0
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


class SQLiteStore:
    """A :class:`~chaperone.store.Store` in a SQLite file, safe across threads and processes.

    Opening creates the file and its parent directory when missing. Any failure to open
    (a directory that cannot be created, a file that is not a database, a schema written
    by a newer Chaperone) raises :class:`~chaperone.StoreError` naming the path; so does
    any SQLite failure later. Expiry is judged with ``clock.timestamp()``.
    """

    def __init__(self, path: Path, clock: Clock, url: str) -> None:
        self.url: str = url
        """Where the store lives, as given to :func:`chaperone.store.open_store`."""
        self.path: Path = path
        """The database file."""
        self._clock = clock
        self._lock = threading.Lock()
        self._writes = 0
        self._conn: sqlite3.Connection | None = _connect(path)
        self._purge(self._conn)

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
        """Append ``record`` to ``stream``, keeping at most the newest ``max_len`` records."""
        _check_max_len(max_len)
        params = {"stream": stream, "record": record, "max_len": max_len}
        with self._using("append to a stream") as conn, _transaction(conn):
            conn.execute("INSERT INTO streams (stream, record) VALUES (:stream, :record)", params)
            conn.execute(
                """
                DELETE FROM streams WHERE stream = :stream AND id <= (
                    SELECT id FROM streams WHERE stream = :stream
                    ORDER BY id DESC LIMIT 1 OFFSET :max_len
                )
                """,
                params,
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

    def close(self) -> None:
        """Close the connection. The store is unusable afterwards; closing twice is harmless."""
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()

    @contextmanager
    def _using(self, action: str) -> Iterator[sqlite3.Connection]:
        """Hold the lock and the open connection; turn SQLite failures into StoreError."""
        with self._lock:
            conn = self._conn
            if conn is None:
                raise StoreError(f"the SQLite store {self.path} is closed")
            try:
                yield conn
            except sqlite3.Error as exc:
                raise StoreError(f"the SQLite store {self.path} could not {action}: {exc}") from exc

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


def _connect(path: Path) -> sqlite3.Connection:
    """Open (creating when missing) and migrate the database at ``path``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"cannot create the directory {path.parent} for the SQLite store {path}: {exc}"
        ) from exc
    try:
        conn = sqlite3.connect(
            path,
            timeout=_BUSY_TIMEOUT_S,
            isolation_level=None,
            check_same_thread=False,
        )
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open the SQLite store {path}: {exc}") from exc
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_S * 1000)}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        _migrate(conn, path)
    except sqlite3.Error as exc:
        conn.close()
        raise StoreError(f"cannot open the SQLite store {path}: {exc}") from exc
    except BaseException:
        conn.close()
        raise
    return conn


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Bring the file's schema up to :data:`SCHEMA_VERSION`, refusing newer ones."""
    with _transaction(conn):
        conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
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
        for statements in _MIGRATIONS[version:]:
            for statement in statements:
                conn.execute(statement)
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', :version) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            {"version": str(SCHEMA_VERSION)},
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
