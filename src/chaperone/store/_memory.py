"""The in-process store: a dict behind a lock, for tests and single-process use.

Nothing is shared between processes and nothing survives a restart; use
``sqlite:///PATH`` when several workers must agree.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Iterator
from itertools import takewhile

from sortedcontainers import SortedList  # type: ignore[import-untyped]  # ships no types

from chaperone._clock import Clock
from chaperone._exceptions import StoreError

__all__ = ["MemoryStore"]

_PURGE_EVERY = 256
"""Drop expired keys after this many writes (or a quarter as many as there are keys,
when more: each purge reads every key), so a long-lived store does not only grow."""

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
"""The range of a counter, as in SQLite and Redis: ``incr`` refuses to leave it."""


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
        self._sorted_keys = SortedList()
        """Every key of ``_values``, in order: prefix reads in O(log n + k), not a scan."""
        self._streams: dict[str, deque[str]] = {}
        self._deadlines: dict[str, _DeadlineIndex] = {}
        self._queues: dict[str, deque[str]] = {}
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
            self._put(key, (value, now + ttl))
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
            self._put(key, (value, None if ttl is None else now + ttl))
            self._wrote(now)

    def delete(self, key: str) -> bool:
        """Delete ``key``; return whether an unexpired value was there."""
        with self._lock:
            self._check_open()
            now = self._clock.timestamp()
            entry = self._drop(key)
            self._wrote(now)
            return entry is not None and _unexpired(entry[1], now)

    def delete_prefix(self, prefix: str) -> int:
        """Delete every key that starts with ``prefix``; return how many unexpired ones went."""
        with self._lock:
            self._check_open()
            now = self._clock.timestamp()
            doomed = list(self._prefixed(prefix))
            live = 0
            for key in doomed:
                _, expires_at = self._values.pop(key)
                live += _unexpired(expires_at, now)
            for key in doomed:
                self._sorted_keys.remove(key)
            self._wrote(now)
            return live

    def keys(self, prefix: str) -> list[str]:
        """Return the unexpired keys that start with ``prefix``, sorted."""
        with self._lock:
            self._check_open()
            now = self._clock.timestamp()
            values = self._values
            return [key for key in self._prefixed(prefix) if _unexpired(values[key][1], now)]

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

    def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        """Add ``amount`` to the integer at ``key`` (0 when absent or expired); return the sum.

        ``ttl`` sets the expiry only when this call creates the key; an existing counter
        keeps its own. A live value that is not a 64-bit integer in canonical form (what
        ``str(int)`` writes), or a sum outside that range, raises ValueError naming the key.
        """
        _check_amount(amount)
        if ttl is not None:
            _check_ttl(ttl)
        with self._lock:
            self._check_open()
            now = self._clock.timestamp()
            entry = self._values.get(key)
            if entry is None or not _unexpired(entry[1], now):
                total, expires_at = int(amount), None if ttl is None else now + ttl
            else:
                value, expires_at = entry
                total = _parse_counter(key, value) + amount
                _check_sum(key, amount, total)
            self._put(key, (str(total), expires_at))
            self._wrote(now)
            return total

    def entry(self, key: str) -> tuple[str, float | None] | None:
        """Return the unexpired value of ``key`` with the clock time it expires at (None:
        never), or None. Not part of the Store protocol: what carrying a key to another
        store needs.
        """
        with self._lock:
            self._check_open()
            entry = self._values.get(key)
            if entry is None or not _unexpired(entry[1], self._clock.timestamp()):
                return None
            return entry

    def get_many(self, keys: list[str]) -> dict[str, str]:
        """Return the unexpired values of ``keys`` that exist, all read at one instant."""
        with self._lock:
            self._check_open()
            now = self._clock.timestamp()
            found = {key: self._live(key, now) for key in keys}
            return {key: value for key, value in found.items() if value is not None}

    def schedule(self, index: str, member: str, at: float) -> None:
        """Put ``member`` in the deadline index ``index`` at time ``at``, replacing its old time."""
        _check_at(at)
        with self._lock:
            self._check_open()
            self._deadlines.setdefault(index, _DeadlineIndex()).put(member, float(at))

    def unschedule(self, index: str, member: str) -> bool:
        """Take ``member`` out of ``index``; return whether it was there."""
        with self._lock:
            self._check_open()
            deadlines = self._deadlines.get(index)
            if deadlines is None or not deadlines.remove(member):
                return False
            if not deadlines:
                del self._deadlines[index]
            return True

    def due(self, index: str, until: float, limit: int) -> list[tuple[str, float]]:
        """Return up to ``limit`` members of ``index`` due by ``until``, earliest first.

        Members due at the same time come in member order. O(log n + k).
        """
        _check_until(until)
        _check_limit(limit)
        with self._lock:
            self._check_open()
            deadlines = self._deadlines.get(index)
            return [] if deadlines is None else deadlines.due(until, limit)

    def push(self, queue: str, record: str) -> None:
        """Append ``record`` to the FIFO ``queue``."""
        with self._lock:
            self._check_open()
            self._queues.setdefault(queue, deque()).append(record)

    def pop(self, queue: str, limit: int) -> list[str]:
        """Remove and return up to ``limit`` of the oldest records of ``queue``, oldest first."""
        _check_limit(limit)
        with self._lock:
            self._check_open()
            records = self._queues.get(queue)
            if records is None:
                return []
            popped = [records.popleft() for _ in range(min(limit, len(records)))]
            if not records:
                del self._queues[queue]
            return popped

    def close(self) -> None:
        """Forget everything. The store is unusable afterwards; closing twice is harmless."""
        with self._lock:
            self._closed = True
            self._values.clear()
            self._sorted_keys.clear()
            self._streams.clear()
            self._deadlines.clear()
            self._queues.clear()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"the store {self.url} is closed")

    def _live(self, key: str, now: float) -> str | None:
        entry = self._values.get(key)
        if entry is None or not _unexpired(entry[1], now):
            return None
        return entry[0]

    def _put(self, key: str, entry: tuple[str, float | None]) -> None:
        if key not in self._values:
            self._sorted_keys.add(key)
        self._values[key] = entry

    def _drop(self, key: str) -> tuple[str, float | None] | None:
        entry = self._values.pop(key, None)
        if entry is not None:
            self._sorted_keys.remove(key)
        return entry

    def _prefixed(self, prefix: str) -> Iterator[str]:
        """The keys that start with ``prefix``, in order (expired ones included)."""
        following = self._sorted_keys.irange(minimum=prefix)
        return takewhile(lambda key: key.startswith(prefix), following)

    def _wrote(self, now: float) -> None:
        self._writes += 1
        if self._writes >= max(_PURGE_EVERY, len(self._values) // 4):
            self._writes = 0
            expired = [k for k, (_, exp) in self._values.items() if not _unexpired(exp, now)]
            for key in expired:
                del self._values[key]
                self._sorted_keys.remove(key)


class _DeadlineIndex:
    """Members ordered by ``(at, member)``, with each member's time at hand for replacing it."""

    def __init__(self) -> None:
        self._order = SortedList()
        self._at: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._at)

    def put(self, member: str, at: float) -> None:
        previous = self._at.get(member)
        if previous is not None:
            self._order.remove((previous, member))
        self._order.add((at, member))
        self._at[member] = at

    def remove(self, member: str) -> bool:
        at = self._at.pop(member, None)
        if at is None:
            return False
        self._order.remove((at, member))
        return True

    def due(self, until: float, limit: int) -> list[tuple[str, float]]:
        earliest = self._order.islice(0, limit)
        return [(member, at) for at, member in takewhile(lambda e: e[0] <= until, earliest)]


def _unexpired(expires_at: float | None, now: float) -> bool:
    return expires_at is None or expires_at > now


def _parse_counter(key: str, value: str) -> int:
    """Read a counter as SQLite and Redis do: canonical decimal text of a 64-bit integer."""
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or str(number) != value or not INT64_MIN <= number <= INT64_MAX:
        raise ValueError(f"the value at key {key!r} is not a 64-bit integer, so incr cannot add")
    return number


def _check_amount(amount: int) -> None:
    if not isinstance(amount, int):
        raise TypeError(f"amount must be an int, got {type(amount).__name__}")
    if not INT64_MIN <= amount <= INT64_MAX:
        raise ValueError(f"amount must fit in a 64-bit integer, got {amount!r}")


def _check_sum(key: str, amount: int, total: int) -> None:
    if not INT64_MIN <= total <= INT64_MAX:
        raise ValueError(f"adding {amount} to the counter at key {key!r} would overflow 64 bits")


def _check_at(at: float) -> None:
    if not math.isfinite(at):
        raise ValueError(f"at must be a finite Unix time in seconds, got {at!r}")


def _check_until(until: float) -> None:
    if math.isnan(until):
        raise ValueError(f"until must be a Unix time in seconds or infinity, got {until!r}")


def _check_ttl(ttl: float) -> None:
    if not (math.isfinite(ttl) and ttl >= 0):
        raise ValueError(f"ttl must be a finite number of seconds >= 0, got {ttl!r}")


def _check_max_len(max_len: int) -> None:
    if max_len < 1:
        raise ValueError(f"max_len must be at least 1, got {max_len!r}")


def _check_limit(limit: int) -> None:
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit!r}")
