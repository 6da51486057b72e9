"""A store that keeps working when the configured one fails, and catches up when it returns.

:class:`ResilientStore` wraps the configured store (the primary) and an in-process
:class:`~chaperone.store.MemoryStore` (the shadow). While the primary answers (``UP``)
every operation goes to it. An operation that fails with StoreError or OSError (the store
is away, full, locked, corrupt, closed, or its file was replaced) turns the wrapper
``DEGRADED`` and is then done on the shadow, so the caller never sees the failure. While
degraded, every operation goes to the shadow at memory speed, and nothing touches the
primary until a probe (:meth:`ResilientStore.maybe_recover`, :meth:`ResilientStore.probe`)
finds it reachable and writable again. Then what the shadow received is carried to the
primary (see :mod:`chaperone.store._journal` for the rules), the shadow is emptied, and the
wrapper is ``UP`` again.

**Reads while degraded see only the shadow.** Mixing the two stores' answers would break
the operations that must be atomic (``set_if_absent``, ``incr``, ``pop``): a claim won in
the shadow could be held in the primary, a counter would start from two values. So a
process that goes degraded sees an empty store plus what it wrote since; whoever owns state
the process itself needs (its jobs' records, say) writes it again on the change, which the
listeners (:meth:`ResilientStore.add_listener`) announce.

**Threads.** Operations in the ``UP`` state take no lock of the wrapper's (the backends
have their own), so the job's writer, the monitor and the delivery loop are not serialised
behind one another. Changes of state, the shadow and its journal are guarded by one lock.
Catching up holds it for a part of the journal at a time (:data:`CARRY_PART` items), so
an operation meanwhile waits for one part at most and is done on the shadow, to be
carried by a later part; the last part and the change to ``UP`` happen under one hold of
the lock, so no operation falls between the end of the catching up and the switch.
"""

from __future__ import annotations

import enum
import secrets
import threading
from collections.abc import Callable
from typing import Final, TypeVar

import attrs
import structlog

from chaperone._clock import Clock
from chaperone._exceptions import StoreError
from chaperone._secrets import MASKER
from chaperone.store._journal import DEFAULT_JOURNAL_LIMIT, OutageJournal
from chaperone.store._memory import MemoryStore
from chaperone.store._protocol import Store

__all__ = ["ResilientStore", "StoreChange", "StoreState"]

_log = structlog.get_logger("chaperone.store")

_T = TypeVar("_T")

PROBE_KEY_PREFIX: Final = "store:probe:"
"""Keys a probe writes (with a short TTL) and deletes, to see that the store is writable."""
_PROBE_TTL_S: Final = 60.0
_SHADOW_URL: Final = "memory://shadow"
CARRY_PART: Final = 100
"""Items carried per hold of the lock when catching up: what one operation may wait for."""


class StoreState(enum.Enum):
    """Whether a :class:`ResilientStore` works on its primary store or from memory."""

    UP = "up"
    """Every operation goes to the configured store."""
    DEGRADED = "degraded"
    """The configured store failed: every operation goes to memory until a probe succeeds."""


@attrs.frozen
class StoreChange:
    """A :class:`ResilientStore` went ``DEGRADED`` or came back ``UP``."""

    state: StoreState
    """The new state."""
    reason: str | None
    """Why it is degraded (free of secrets); None when it came back up."""
    at: float
    """Clock time of the change."""


class ResilientStore:
    """A :class:`~chaperone.store.Store` that works from memory while its primary store
    fails, and carries what it did back once the primary answers again.
    """

    def __init__(
        self,
        url: str,
        clock: Clock,
        opener: Callable[[], Store],
        *,
        probe_interval: float = 5.0,
        journal_limit: int = DEFAULT_JOURNAL_LIMIT,
    ) -> None:
        """Open the primary with ``opener()`` at once. When that raises StoreError (or
        OSError) the store starts degraded, with the reason, and probes call ``opener()``
        again; a ConfigError from it propagates (a bad URL is a configuration error).

        ``probe_interval``: seconds of ``clock`` between probes of :meth:`maybe_recover`.
        ``journal_limit``: how many changes made while degraded are kept to be carried
        back (outbox entries are kept beyond it).
        """
        self.url: str = url
        """Where the primary store lives, as given to :func:`chaperone.store.open_store`."""
        self.probe_interval = probe_interval
        """Seconds of the clock between two probes of :meth:`maybe_recover`."""
        self._clock = clock
        self._opener = opener
        self._lock = threading.Lock()
        """Guards the state, the shadow and the journal."""
        self._probing = threading.RLock()
        """One probe at a time (a listener may probe from within one)."""
        self._listeners: list[Callable[[StoreChange], None]] = []
        self._shadow = MemoryStore(clock, _SHADOW_URL)
        self._journal = OutageJournal(journal_limit)
        self._closed = False
        self._state = StoreState.UP
        self._reason: str | None = None
        self._degraded_since: float | None = None
        self._recovered_at: float | None = None
        self._last_probe = clock.timestamp()
        self._primary: Store | None = None
        try:
            self._primary = opener()
        except OSError as exc:
            self._degrade_locked(_describe(exc))
            _log.warning("the store could not be opened; working from memory", reason=self._reason)

    def __repr__(self) -> str:
        return f"ResilientStore(primary={self._primary!r}, state={self._state.value})"

    # -- state ----------------------------------------------------------------------------

    @property
    def state(self) -> StoreState:
        """``UP`` or ``DEGRADED``."""
        return self._state

    @property
    def reason(self) -> str | None:
        """Why the store is degraded (free of secrets), or None when it is up."""
        return self._reason

    @property
    def degraded_since(self) -> float | None:
        """Clock time the store went degraded, or None when it is up."""
        return self._degraded_since

    def settling(self, now: float) -> bool:
        """Whether the store came back less than two probe intervals before ``now``: the
        time other processes that worked from memory meanwhile need to carry what they
        held to it (their claims of incidents among it).
        """
        back = self._recovered_at
        return back is not None and now - back < 2 * self.probe_interval

    @property
    def pending(self) -> int:
        """How many changes made while degraded wait to be carried to the primary."""
        with self._lock:
            return len(self._journal)

    def add_listener(self, listener: Callable[[StoreChange], None]) -> None:
        """Call ``listener`` on every change of state, in the thread that saw it, outside
        any lock of the store's; an exception it raises is logged and ignored. A store
        that could not open its primary is degraded from the start, with no change
        announced: read :attr:`state` after building it.
        """
        with self._lock:
            self._listeners.append(listener)

    def maybe_recover(self) -> bool:
        """Probe when degraded and a probe is due (``probe_interval`` seconds of the clock
        since the last one); return whether the store is up afterwards.
        """
        if self._state is StoreState.UP:
            return True
        now = self._clock.timestamp()
        with self._lock:
            due = now - self._last_probe >= self.probe_interval or now < self._last_probe
            if due:
                self._last_probe = now
        return self.probe() if due else False

    def probe(self) -> bool:
        """Try the primary now, opening it again if it could not be opened: is it
        reachable and writable? If so, and the store was degraded, carry what the shadow
        received to it, empty the shadow, and go up. Return whether the store is up
        afterwards. A primary that fails the probe turns an up store degraded.

        Blocks for as long as the primary takes to answer (a locked SQLite file: its busy
        timeout) and to take what is carried; operations meanwhile carry on from memory,
        each waiting at most for one part of the carrying.
        """
        with self._probing:
            with self._lock:
                self._last_probe = self._clock.timestamp()
                primary = self._primary
            if self._closed:
                return False
            try:
                if primary is None:
                    primary = self._open_primary()
                _check_writable(primary)
            except OSError as exc:
                self._failed(primary, exc)
                return False
            return self._recover(primary)

    def close(self) -> None:
        """Close the primary and forget the shadow. The store is unusable afterwards;
        closing twice is harmless. What the shadow holds and has not been carried is lost
        (logged): call :meth:`probe` first to carry it while the primary answers.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            primary, self._primary = self._primary, None
            if len(self._journal):
                _log.warning(
                    "the store was closed while degraded: changes made meanwhile never reached it",
                    changes=len(self._journal),
                )
            self._journal.report_dropped("closed")
            self._shadow.close()
        if primary is not None:
            try:
                primary.close()
            except OSError as exc:
                _log.warning("could not close the store", error=_describe(exc))

    # -- the Store protocol ---------------------------------------------------------------

    def set_if_absent(self, key: str, value: str, ttl: float) -> bool:
        """Set ``key`` to ``value`` for ``ttl`` seconds unless it holds an unexpired value."""
        return self._call(
            lambda store: store.set_if_absent(key, value, ttl),
            lambda won: self._journal.set_if_absent(key, won),
        )

    def get(self, key: str) -> str | None:
        """Return the unexpired value of ``key``, or None."""
        return self._call(lambda store: store.get(key))

    def set(self, key: str, value: str, ttl: float | None = None) -> None:
        """Set ``key`` to ``value``, expiring after ``ttl`` seconds (never when None)."""
        self._call(lambda store: store.set(key, value, ttl), lambda _: self._journal.set(key))

    def delete(self, key: str) -> bool:
        """Delete ``key``; return whether an unexpired value was there."""
        return self._call(lambda store: store.delete(key), lambda _: self._journal.delete(key))

    def delete_prefix(self, prefix: str) -> int:
        """Delete every key that starts with ``prefix``; return how many unexpired ones went."""
        return self._call(
            lambda store: store.delete_prefix(prefix),
            lambda _: self._journal.delete_prefix(prefix),
        )

    def keys(self, prefix: str) -> list[str]:
        """Return the unexpired keys that start with ``prefix``, sorted."""
        return self._call(lambda store: store.keys(prefix))

    def append(self, stream: str, record: str, max_len: int) -> None:
        """Append ``record`` to ``stream``, keeping at most the newest ``max_len`` records."""
        self._call(
            lambda store: store.append(stream, record, max_len),
            lambda _: self._journal.append(stream, record, max_len),
        )

    def tail(self, stream: str, limit: int) -> list[str]:
        """Return up to ``limit`` records of ``stream``, newest first."""
        return self._call(lambda store: store.tail(stream, limit))

    def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        """Add ``amount`` to the integer at ``key`` (0 when absent or expired); return the sum."""
        return self._call(
            lambda store: store.incr(key, amount, ttl),
            lambda _: self._journal.incr(key, amount),
        )

    def get_many(self, keys: list[str]) -> dict[str, str]:
        """Return the unexpired values of ``keys`` that exist."""
        return self._call(lambda store: store.get_many(keys))

    def schedule(self, index: str, member: str, at: float) -> None:
        """Put ``member`` in the deadline index ``index`` at time ``at``, replacing its old time."""
        self._call(
            lambda store: store.schedule(index, member, at),
            lambda _: self._journal.schedule(index, member, at),
        )

    def unschedule(self, index: str, member: str) -> bool:
        """Take ``member`` out of ``index``; return whether it was there."""
        return self._call(
            lambda store: store.unschedule(index, member),
            lambda _: self._journal.unschedule(index, member),
        )

    def due(self, index: str, until: float, limit: int) -> list[tuple[str, float]]:
        """Return up to ``limit`` members of ``index`` due by ``until``, earliest first."""
        return self._call(lambda store: store.due(index, until, limit))

    def push(self, queue: str, record: str) -> None:
        """Append ``record`` to the FIFO ``queue``."""
        self._call(
            lambda store: store.push(queue, record),
            lambda _: self._journal.push(queue, record),
        )

    def pop(self, queue: str, limit: int) -> list[str]:
        """Remove and return up to ``limit`` of the oldest records of ``queue``."""
        return self._call(
            lambda store: store.pop(queue, limit),
            lambda popped: self._journal.pop(queue, len(popped)),
        )

    # -- inside ---------------------------------------------------------------------------

    def _call(
        self,
        operation: Callable[[Store], _T],
        record: Callable[[_T], None] | None = None,
    ) -> _T:
        """Run ``operation`` on the primary while up; on the shadow (telling ``record``
        its answer) while degraded, or once the primary failed it.
        """
        while True:
            primary = self._primary
            if self._state is StoreState.UP and primary is not None:
                try:
                    return operation(primary)
                except OSError as exc:
                    if self._closed:
                        raise StoreError(f"the store {MASKER.mask(self.url)} is closed") from None
                    self._failed(primary, exc)
            with self._lock:
                if self._closed:
                    raise StoreError(f"the store {MASKER.mask(self.url)} is closed")
                if self._state is StoreState.UP:
                    continue  # another thread's probe brought it back meanwhile
                result = operation(self._shadow)
                if record is not None:
                    record(result)
                return result

    def _open_primary(self) -> Store:
        """Call the opener; keep what it opened unless the store was closed meanwhile."""
        primary = self._opener()
        with self._lock:
            if not self._closed:
                self._primary = primary
                return primary
        primary.close()
        raise StoreError(f"the store {MASKER.mask(self.url)} is closed")

    def _failed(self, primary: Store | None, exc: OSError) -> None:
        """The primary failed: go degraded (announcing it) if it was up, else note why."""
        reason = _describe(exc)
        with self._lock:
            if self._closed or self._primary is not primary:
                return
            if self._state is StoreState.DEGRADED:
                self._reason = reason
                return
            change = self._degrade_locked(reason)
            listeners = list(self._listeners)
        _log.warning("the store failed; working from memory until it answers", reason=reason)
        self._announce(listeners, change)

    def _degrade_locked(self, reason: str) -> StoreChange:
        now = self._clock.timestamp()
        self._state = StoreState.DEGRADED
        self._reason = reason
        self._degraded_since = now
        self._last_probe = now
        return StoreChange(state=StoreState.DEGRADED, reason=reason, at=now)

    def _recover(self, primary: Store) -> bool:
        """Carry the journal to ``primary`` and go up; stay degraded if that fails.

        A long journal is carried in parts of :data:`CARRY_PART` items with the lock let
        go between them, so an operation waits for one part at most (it goes to the
        shadow, and the journal, meanwhile: the next part carries it). The last part and
        the change to ``UP`` happen under one hold of the lock, so no operation falls
        between them.
        """
        carried = 0
        parts = 1 + 2 * (len(self._journal) // CARRY_PART)  # ahead of writers, or give up
        while True:
            with self._lock:
                if self._closed or self._primary is not primary:
                    return False
                if self._state is StoreState.UP:
                    return True
                waiting = len(self._journal)
                last = waiting <= CARRY_PART or parts == 0
                try:
                    self._journal.carry(
                        self._shadow, primary, self._clock, None if last else CARRY_PART
                    )
                except OSError as exc:
                    self._reason = _describe(exc)
                    _log.warning(
                        "the store answered but failed while catching up; still working "
                        "from memory",
                        carried=carried + waiting - len(self._journal),
                        left=len(self._journal),
                        reason=self._reason,
                    )
                    return False
                carried += waiting - len(self._journal)
                parts -= 1
                if last:
                    change, listeners = self._up_locked()
                    break
        _log.info("the store answers again; what was done meanwhile is in it", carried=carried)
        self._announce(listeners, change)
        return True

    def _up_locked(self) -> tuple[StoreChange, list[Callable[[StoreChange], None]]]:
        """Empty the shadow and go up; return the change and whom to tell."""
        self._shadow.close()
        self._shadow = MemoryStore(self._clock, _SHADOW_URL)
        self._state = StoreState.UP
        self._reason = None
        self._degraded_since = None
        self._recovered_at = self._clock.timestamp()
        change = StoreChange(state=StoreState.UP, reason=None, at=self._recovered_at)
        return change, list(self._listeners)

    @staticmethod
    def _announce(listeners: list[Callable[[StoreChange], None]], change: StoreChange) -> None:
        for listener in listeners:
            try:
                listener(change)
            except Exception:
                _log.exception("a listener of the store's state failed", state=change.state.value)


def _check_writable(store: Store) -> None:
    """Write, read back and delete a probe key; raise StoreError when the store does not
    keep what it was given (and whatever the store raises when it fails).
    """
    key = PROBE_KEY_PREFIX + secrets.token_hex(8)
    token = secrets.token_hex(8)
    store.set(key, token, _PROBE_TTL_S)
    if store.get(key) != token:
        raise StoreError("the store did not keep a value written to it")
    store.delete(key)


def _describe(exc: BaseException) -> str:
    """An error as one line free of secrets."""
    return MASKER.mask(str(exc) or type(exc).__name__)
