"""What changed in a stand-in store while the real one was away, kept to be carried back.

While :class:`~chaperone.store.ResilientStore` is degraded, every operation is done on an
in-memory stand-in (the shadow), and each change is told to an :class:`OutageJournal`.
The journal keeps, per key, deadline member, stream and queue, only what the real store
(the primary) needs in order to end as one healthy store would have ended, and
:meth:`OutageJournal.carry` writes that to the primary once it answers again:

- a key deleted (``delete``, ``delete_prefix``) is deleted; a prefix deleted is deleted
  first, before any key is written;
- a key the shadow holds is written with what is left of its TTL: with ``incr`` (the sum
  of the amounts) when it was written only by ``incr``, so counters of several processes
  add up; with ``set_if_absent`` when ``set_if_absent`` wrote it first, so a claim another
  process made meanwhile wins (and what ``incr`` added after the claim is added to the
  winner's value); with ``set`` otherwise;
- stream records are appended in order, each with its own ``max_len``; deadline members
  scheduled or unscheduled are scheduled or unscheduled; queue records pushed and not
  popped are pushed in order.

Keys are carried first, then deadlines, then streams and queues, so an outbox entry
(``outbox:entry:ID``, its lease ``outbox:lease:ID``) is in the primary before its due time
(``outbox:due``) makes it visible to other processes. Each item is forgotten as soon as it
is written, so a carry that fails half-way keeps exactly what has not reached the primary.

**Bounded.** The journal holds at most ``limit`` items (keys, deleted prefixes, deadline
members, stream and queue records). A change that would pass that is done in the shadow
only and never reaches the primary; the first such loss of an outage is logged, and the
count when the journal is carried or closed. Outbox keys and due times are never
dropped: an alert must not be lost.

**Where it differs from one store.** A counter written only by ``incr`` whose TTL ran out
and that started again during the outage is carried as the sum of every amount (whether
the primary's counter expired too cannot be known from the shadow). An ``incr`` that the
primary refuses when carried (its value there is not an integer) is logged and dropped.
"""

from __future__ import annotations

import enum
from collections import deque
from typing import Final

import attrs
import structlog

from chaperone._clock import Clock
from chaperone.store._memory import MemoryStore
from chaperone.store._protocol import Store

__all__ = ["DEFAULT_JOURNAL_LIMIT", "OutageJournal"]

_log = structlog.get_logger("chaperone.store")

DEFAULT_JOURNAL_LIMIT: Final = 100_000
"""Items an outage journal holds before it drops changes (outbox ones excepted)."""

_KEPT_KEY_PREFIXES: Final = ("outbox:entry:", "outbox:lease:")
"""Keys never dropped from a full journal: outbox entries and their leases."""
_KEPT_INDEXES: Final = frozenset({"outbox:due"})
"""Deadline indexes never dropped from a full journal: the outbox's due times."""


class _Change(enum.Enum):
    """How a key's final state in the shadow relates to its state in the primary."""

    OVERWRITE = "overwrite"
    """Set or deleted during the outage: the shadow's value (or absence) is final."""
    ADD = "add"
    """Written only by ``incr``: the primary's counter gets the sum."""
    CLAIM = "claim"
    """First written by ``set_if_absent``: claimed in the primary, then ``delta`` added
    to the value there if another process's claim won."""


@attrs.define
class _KeyEntry:
    change: _Change
    delta: int = 0


class OutageJournal:
    """The changes a shadow store received during an outage, compacted per key, member,
    stream and queue. Not thread-safe: its owner calls it under the lock it holds for the
    shadow.
    """

    def __init__(self, limit: int = DEFAULT_JOURNAL_LIMIT) -> None:
        """``limit``: how many items it holds before dropping changes."""
        self.limit = limit
        self._keys: dict[str, _KeyEntry] = {}
        self._prefixes: list[str] = []
        self._deadlines: dict[tuple[str, str], float | None] = {}
        self._streams: dict[str, deque[tuple[str | None, int]]] = {}
        """Per stream, the newest records of the shadow's stream with their ``max_len``:
        a suffix of it, None where a record is not to be carried."""
        self._queues: dict[str, deque[str | None]] = {}
        """Per queue, every record of the shadow's queue, None where it is not to be
        carried."""
        self._size = 0
        self._dropped = 0

    def __len__(self) -> int:
        """How many items are waiting to be carried."""
        return self._size

    @property
    def dropped(self) -> int:
        """Changes dropped because the journal was full, since it was last carried."""
        return self._dropped

    # -- recording: called after the shadow did the operation -----------------------------

    def set(self, key: str) -> None:
        """``key`` was set in the shadow."""
        self._overwrite(key)

    def delete(self, key: str) -> None:
        """``key`` was deleted in the shadow."""
        self._overwrite(key)

    def set_if_absent(self, key: str, won: bool) -> None:
        """``set_if_absent(key)`` answered ``won`` in the shadow."""
        if not won:
            return
        entry = self._keys.get(key)
        if entry is None:
            self._add_key(key, _Change.CLAIM)
        elif entry.change is _Change.ADD:
            entry.change = _Change.CLAIM

    def incr(self, key: str, amount: int) -> None:
        """``amount`` was added to ``key`` in the shadow."""
        entry = self._keys.get(key)
        if entry is None:
            self._add_key(key, _Change.ADD, amount)
        elif entry.change is not _Change.OVERWRITE:
            entry.delta += amount

    def delete_prefix(self, prefix: str) -> None:
        """Every key starting with ``prefix`` was deleted in the shadow."""
        doomed = [key for key in self._keys if key.startswith(prefix)]
        for key in doomed:
            del self._keys[key]
        self._size -= len(doomed)
        if any(prefix.startswith(wider) for wider in self._prefixes):
            return
        narrower = [known for known in self._prefixes if known.startswith(prefix)]
        for known in narrower:
            self._prefixes.remove(known)
        self._size -= len(narrower)
        if self._room("a deleted prefix", kept=False):
            self._prefixes.append(prefix)
            self._size += 1

    def append(self, stream: str, record: str, max_len: int) -> None:
        """``record`` was appended to ``stream`` in the shadow, which keeps ``max_len``."""
        records = self._streams.setdefault(stream, deque())
        if self._room("a stream record", kept=False):
            records.append((record, max_len))
            self._size += 1
        else:
            records.append((None, max_len))
        while len(records) > max_len:
            self._size -= records.popleft()[0] is not None

    def schedule(self, index: str, member: str, at: float) -> None:
        """``member`` was scheduled at ``at`` in the shadow's ``index``."""
        self._deadline(index, member, at)

    def unschedule(self, index: str, member: str) -> None:
        """``member`` was taken out of the shadow's ``index``."""
        self._deadline(index, member, None)

    def push(self, queue: str, record: str) -> None:
        """``record`` was pushed to the shadow's ``queue``."""
        records = self._queues.setdefault(queue, deque())
        if self._room("a queue record", kept=False):
            records.append(record)
            self._size += 1
        else:
            records.append(None)

    def pop(self, queue: str, count: int) -> None:
        """``count`` records were popped from the shadow's ``queue``."""
        records = self._queues.get(queue)
        if records is None:
            return
        for _ in range(min(count, len(records))):
            self._size -= records.popleft() is not None
        if not records:
            del self._queues[queue]

    # -- carrying -------------------------------------------------------------------------

    def carry(
        self, shadow: MemoryStore, primary: Store, clock: Clock, limit: int | None = None
    ) -> None:
        """Write what the journal holds to ``primary``, reading values from ``shadow``:
        everything, or about ``limit`` items when given (the rest stays for a later call).

        Each item is forgotten once written; queue records carried are popped from the
        shadow too. Raises what ``primary`` raises (StoreError or OSError when it fails
        again), keeping what has not been carried. Carrying in parts with other changes
        in between ends as carrying once: it is what a carry that failed half-way does.
        """
        stop_at = None if limit is None else max(0, self._size - limit)

        def enough() -> bool:
            return stop_at is not None and self._size <= stop_at

        while self._prefixes and not enough():
            primary.delete_prefix(self._prefixes[0])
            del self._prefixes[0]
            self._size -= 1
        for key, entry in list(self._keys.items()):
            if enough():
                return
            self._carry_key(key, entry, shadow, primary, clock)
            del self._keys[key]
            self._size -= 1
        for (index, member), at in list(self._deadlines.items()):
            if enough():
                return
            if at is None:
                primary.unschedule(index, member)
            else:
                primary.schedule(index, member, at)
            del self._deadlines[(index, member)]
            self._size -= 1
        for stream, appended in list(self._streams.items()):
            while appended and not enough():
                record, max_len = appended[0]
                if record is not None:
                    primary.append(stream, record, max_len)
                    self._size -= 1
                appended.popleft()
            if appended:
                return
            del self._streams[stream]
        for queue, pushed in list(self._queues.items()):
            while pushed and not enough():
                if pushed[0] is not None:
                    primary.push(queue, pushed[0])
                    self._size -= 1
                pushed.popleft()
                shadow.pop(queue, 1)
            if pushed:
                return
            del self._queues[queue]
        if limit is None:
            self.report_dropped("carried")

    def report_dropped(self, when: str) -> None:
        """Log how many changes were dropped for want of room, if any, and start counting
        again; ``when`` says what happened to the rest ("carried", "closed").
        """
        if self._dropped:
            _log.warning(
                "changes made while the store was away were dropped, not carried to it: "
                "the outage journal was full",
                dropped=self._dropped,
                limit=self.limit,
                rest=when,
            )
            self._dropped = 0

    # -- inside ---------------------------------------------------------------------------

    def _overwrite(self, key: str) -> None:
        entry = self._keys.get(key)
        if entry is None:
            self._add_key(key, _Change.OVERWRITE)
        else:
            entry.change = _Change.OVERWRITE

    def _add_key(self, key: str, change: _Change, delta: int = 0) -> None:
        # Under a deleted prefix, a counter or a claim meets no value in the primary:
        # prefixes are deleted there first.
        if self._room("a key", kept=key.startswith(_KEPT_KEY_PREFIXES)):
            self._keys[key] = _KeyEntry(change, delta)
            self._size += 1

    def _deadline(self, index: str, member: str, at: float | None) -> None:
        slot = (index, member)
        if slot not in self._deadlines:
            if not self._room("a deadline", kept=index in _KEPT_INDEXES):
                return
            self._size += 1
        self._deadlines[slot] = at

    def _room(self, what: str, *, kept: bool) -> bool:
        """Whether one more item fits (always, for one that is ``kept``); counts and, the
        first time in an outage, logs one that does not.
        """
        if kept or self._size < self.limit:
            return True
        if not self._dropped:
            _log.warning(
                "the outage journal is full: changes made while the store is away are "
                "kept in memory only and will not reach it",
                limit=self.limit,
                first=what,
            )
        self._dropped += 1
        return False

    @staticmethod
    def _carry_key(
        key: str, entry: _KeyEntry, shadow: MemoryStore, primary: Store, clock: Clock
    ) -> None:
        found = shadow.entry(key)
        value, expires_at = found if found is not None else (None, None)
        ttl = None if expires_at is None else max(0.0, expires_at - clock.timestamp())
        try:
            if entry.change is _Change.OVERWRITE:
                if value is None:
                    primary.delete(key)
                else:
                    primary.set(key, value, ttl)
            elif value is None:
                # Expired in the shadow: what was added still counts where the primary's
                # value lives on; a key the outage created is made already expired.
                if entry.change is _Change.ADD or entry.delta:
                    primary.incr(key, entry.delta, 0.0)
            elif entry.change is _Change.ADD:
                primary.incr(key, entry.delta, ttl)
            # A claim always has a TTL: set_if_absent gave it one and incr keeps it.
            elif not primary.set_if_absent(key, value, ttl or 0.0) and entry.delta:
                primary.incr(key, entry.delta)
        except ValueError as exc:
            _log.warning(
                "dropped a change made while the store was away: the store refused it",
                key=key,
                error=str(exc),
            )
