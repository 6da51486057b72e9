"""The in-process store: a dict behind a lock, for tests and single-process use.

Nothing is shared between processes and nothing survives a restart; use
``sqlite:///PATH`` when several workers must agree.
"""

from __future__ import annotations

import math
import threading
from collections import deque

from chaperone._clock import Clock
from chaperone._exceptions import StoreError

__all__ = ["MemoryStore"]

_PURGE_EVERY = 256
"""Drop expired keys after this many writes, so a long-lived store does not only grow."""


class MemoryStore:
    """A :class:`~chaperone.store.Store` held in this process's memory, safe across threads.

    Expiry is judged with ``clock.timestamp()``: a key set with ``ttl`` seconds at time
    ``t`` is gone from ``t + ttl`` on.
    """

    def __init__(self, clock: Clock, url: str = "memory://") -> None:
        self.url: str = url
        """Where the store lives, as given to :func:`chaperone.store.open_store`."""
        self._clock = clock
        self._lock = threading.Lock()
        self._values: dict[str, tuple[str, float | None]] = {}
        self._streams: dict[str, deque[str]] = {}
        self._writes = 0
        self._closed = False

    def __repr__(self) -> str:
        return f"MemoryStore(url={self.url!r})"

    def set_if_absent(self, key: str, value: str, ttl: float) -> bool:
        """Set ``key`` to ``value`` for ``ttl`` seconds unless it holds an unexpired value."""
        _check_ttl(ttl)
        with self._lock:
            self._check_open()
            now = self._clock.timestamp()
            if self._live(key, now) is not None:
                return False
            self._values[key] = (value, now + ttl)
            self._wrote(now)
            return True

    def get(self, key: str) -> str | None:
        """Return the unexpired value of ``key``, or None."""
        with self._lock:
            self._check_open()
            return self._live(key, self._clock.timestamp())

    def set(self, key: str, value: str, ttl: float | None = None) -> None:
        """Set ``key`` to ``value``, expiring after ``ttl`` seconds (never when None)."""
        if ttl is not None:
            _check_ttl(ttl)
        with self._lock:
            self._check_open()
            now = self._clock.timestamp()
            self._values[key] = (value, None if ttl is None else now + ttl)
            self._wrote(now)

    def delete(self, key: str) -> bool:
        """Delete ``key``; return whether an unexpired value was there."""
        with self._lock:
            self._check_open()
            now = self._clock.timestamp()
            entry = self._values.pop(key, None)
            self._wrote(now)
            return entry is not None and _unexpired(entry[1], now)

    def delete_prefix(self, prefix: str) -> int:
        """Delete every key that starts with ``prefix``; return how many unexpired ones went."""
        with self._lock:
            self._check_open()
            now = self._clock.timestamp()
            doomed = [key for key in self._values if key.startswith(prefix)]
            live = 0
            for key in doomed:
                _, expires_at = self._values.pop(key)
                live += _unexpired(expires_at, now)
            self._wrote(now)
            return live

    def keys(self, prefix: str) -> list[str]:
        """Return the unexpired keys that start with ``prefix``, sorted."""
        with self._lock:
            self._check_open()
            now = self._clock.timestamp()
            return sorted(
                key
                for key, (_, expires_at) in self._values.items()
                if key.startswith(prefix) and _unexpired(expires_at, now)
            )

    def append(self, stream: str, record: str, max_len: int) -> None:
        """Append ``record`` to ``stream``, keeping at most the newest ``max_len`` records."""
        _check_max_len(max_len)
        with self._lock:
            self._check_open()
            records = self._streams.setdefault(stream, deque())
            records.append(record)
            while len(records) > max_len:
                records.popleft()
            self._wrote(self._clock.timestamp())

    def tail(self, stream: str, limit: int) -> list[str]:
        """Return up to ``limit`` records of ``stream``, newest first."""
        _check_limit(limit)
        with self._lock:
            self._check_open()
            records = self._streams.get(stream, ())
            newest_first = reversed(records)
            return [record for record, _ in zip(newest_first, range(limit), strict=False)]

    def close(self) -> None:
        """Forget everything. The store is unusable afterwards; closing twice is harmless."""
        with self._lock:
            self._closed = True
            self._values.clear()
            self._streams.clear()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"the store {self.url} is closed")

    def _live(self, key: str, now: float) -> str | None:
        entry = self._values.get(key)
        if entry is None or not _unexpired(entry[1], now):
            return None
        return entry[0]

    def _wrote(self, now: float) -> None:
        self._writes += 1
        if self._writes % _PURGE_EVERY == 0:
            expired = [k for k, (_, exp) in self._values.items() if not _unexpired(exp, now)]
            for key in expired:
                del self._values[key]


def _unexpired(expires_at: float | None, now: float) -> bool:
    return expires_at is None or expires_at > now


def _check_ttl(ttl: float) -> None:
    if not (math.isfinite(ttl) and ttl >= 0):
        raise ValueError(f"ttl must be a finite number of seconds >= 0, got {ttl!r}")


def _check_max_len(max_len: int) -> None:
    if max_len < 1:
        raise ValueError(f"max_len must be at least 1, got {max_len!r}")


def _check_limit(limit: int) -> None:
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit!r}")
