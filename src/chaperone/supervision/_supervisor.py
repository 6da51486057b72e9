"""The job side's writer: supervision facts go to the store without ever holding up a job.

Job processes only write cheap facts to the store; detection runs in the monitor. A
:class:`Supervisor` writes them for every job of its process:

- **In the background** (by default with the real clock): a job's own calls
  (``heartbeat()``, ``progress()``, its start and its end) only hand the latest record
  to a writer thread and return, in microseconds, whatever the store does: locked, full,
  slow or away. The writer keeps the latest unwritten record of each job (one per job,
  the newest wins) and retries after a failed call (1 s, doubling up to 30 s). It also
  vouches for the process's running jobs (``alive:<id>``, for ``lease`` seconds, renewed
  every third of that), so a job whose supervising process dies
  ends as abandoned rather than "running" forever. :meth:`Supervisor.flush` waits for
  what is still unwritten, at most a given time (at exit).
- **Inline** (with an injected clock, in tests): the caller's thread writes, and
  drives the retries (:meth:`Supervisor.retry_pending`); after a failed call the job's
  own calls only keep records until the retry delay has passed.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, TypeVar

import attrs
import structlog

from chaperone._clock import Clock, SystemClock
from chaperone._event_codec import encode_event
from chaperone._events import Event, IncidentRef
from chaperone._secrets import describe
from chaperone.store import ResilientStore, Store, StoreChange, StoreState
from chaperone.supervision import _keys
from chaperone.supervision._keys import RETENTION
from chaperone.supervision._last_run import note_run
from chaperone.supervision._records import JobRecord, JobState

if TYPE_CHECKING:
    from chaperone.supervision._job import Supervision

__all__ = [
    "PENDING_LIMIT",
    "RETENTION",
    "RETRY_FIRST",
    "RETRY_MAX",
    "Supervisor",
    "close_incidents",
    "store_record",
]

R = TypeVar("R")

RETRY_FIRST: Final = 1.0
"""Seconds after a failed store call before the store is tried again."""
RETRY_MAX: Final = 30.0
"""The retry delay doubles after each failed retry, up to this."""
PENDING_LIMIT: Final = 10_000
"""At most this many jobs' unwritten records are kept; beyond, the oldest is dropped."""
_WARN_EVERY: Final = 60.0

_log = structlog.get_logger("chaperone.supervision")


@attrs.frozen
class _Unwritten:
    record: JobRecord
    ttl: float | None


class Supervisor:
    """Writes supervision facts to one store. Cheap; one per process is plenty.

    ``background`` (by default, when the clock is the real one) gives the writes to a
    writer thread; otherwise the caller's thread writes, and a record the store refused
    is kept (the latest per job) and written by the next call that finds the store
    answering, or by :meth:`retry_pending`. ``retry_in_background`` is the older name of
    ``background``.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock | None = None,
        *,
        background: bool | None = None,
        retry_in_background: bool | None = None,
        lease: float = _keys.DEFAULT_LEASE,
    ) -> None:
        self.store = store
        self.clock: Clock = clock or SystemClock()
        chosen = background if background is not None else retry_in_background
        self.background = isinstance(self.clock, SystemClock) if chosen is None else chosen
        """Whether a writer thread writes (the job's calls never touch the store)."""
        self.description = f"pid {os.getpid()} on {socket.gethostname()}"
        """This process, as job records and abandoned-job alerts name it."""
        if lease <= 0:
            raise ValueError(f"lease must be positive, got {lease!r}")
        self.lease = lease
        """Seconds each vouch for a running job lasts (in the background only)."""
        self._warned_at = float("-inf")
        self._lock = threading.Lock()
        self._progress = threading.Condition(self._lock)
        self._unwritten: dict[str, _Unwritten] = {}
        self._tasks: deque[Callable[[], None]] = deque()
        self._writing: set[str] = set()
        self._active: dict[str, Supervision] = {}
        self._retry_delay = 0.0  # 0 while the store answers
        self._retry_at = float("-inf")  # clock time before which the job's calls only keep
        self._backoff_until = 0.0  # monotonic time before which the writer does not retry
        self._lease_due = 0.0  # monotonic time of the next renewal of the vouches
        self._vouch_needed = False  # a job was tracked (or rewritten) and not vouched for yet
        self._running_task = False  # the writer is running a task taken off the queue
        self._rewrite = False
        self._wake = threading.Event()
        self._writer: threading.Thread | None = None
        self._fork_pid = os.getpid()
        self.on_cycle: Callable[[], None] | None = None
        """Called by the writer thread on every cycle (at least once a second): the
        process's own detection while the store is degraded hooks in here."""

    # -- state -------------------------------------------------------------------------

    @property
    def pending(self) -> dict[str, JobRecord]:
        """The records not written yet, by supervision id (a copy)."""
        with self._lock:
            return {key: entry.record for key, entry in self._unwritten.items()}

    @property
    def store_away(self) -> bool:
        """Whether the last store call failed and the retry delay has not passed yet."""
        return self.clock.timestamp() < self._retry_at

    @property
    def active(self) -> list[Supervision]:
        """The jobs of this process that run now (a copy)."""
        with self._lock:
            return list(self._active.values())

    # -- store calls ---------------------------------------------------------------------

    def safely(self, action: str, operation: Callable[[], R]) -> R | None:
        """Run a store operation; log (at most once a minute) instead of raising. A success
        after failures writes what was kept meanwhile.
        """
        succeeded, value = self._call(action, operation)
        if succeeded and self._unwritten:
            self._flush_soon()
        return value

    def _call(self, action: str, operation: Callable[[], R]) -> tuple[bool, R | None]:
        """Run a store operation; note whether the store answered."""
        try:
            value = operation()
        except Exception as exc:
            now = self.clock.timestamp()
            with self._lock:
                delay = min(RETRY_MAX, self._retry_delay * 2) if self._retry_delay else RETRY_FIRST
                self._retry_delay = delay
                self._retry_at = now + delay
                self._backoff_until = time.monotonic() + delay
            if now - self._warned_at >= _WARN_EVERY:
                self._warned_at = now
                _log.warning(
                    "supervision store unavailable; the job goes on",
                    action=action,
                    error=describe(exc),
                )
            return False, None
        if self._retry_delay:
            with self._lock:
                self._retry_delay = 0.0
                self._retry_at = float("-inf")
                self._backoff_until = 0.0
        return True, value

    def _if_up(self, action: str, operation: Callable[[], R]) -> R | None:
        """Like :meth:`safely`, but skipped (None) while the store is away: for the job's
        own call path, which must not wait out the store's retries again and again.
        """
        if self.store_away:
            return None
        return self.safely(action, operation)

    def emit(self, event: Event) -> bool:
        """Hand an event to the monitor through the store's queue; return whether it was
        queued (False when the store is away).
        """
        text = encode_event(event)

        def push() -> bool:
            self.store.push(_keys.EVENTS_QUEUE, text)
            return True

        return bool(self.safely("queue an event", push))

    # -- records -----------------------------------------------------------------------

    def write(self, record: JobRecord, *, ttl: float | None = None) -> bool:
        """Write a job record and (re)schedule its checks; return whether it was written,
        or, in the background, handed to the writer (which then owns it).

        Inline, when the store fails, or failed less than the retry delay ago, the record
        is kept instead (replacing any older one of the job) and written later.
        """
        key = record.supervision_id
        if self.background:
            with self._lock:
                self._keep(key, _Unwritten(record, ttl))
            self._start_writer()
            return True
        with self._lock:
            if key in self._writing or self.clock.timestamp() < self._retry_at:
                self._keep(key, _Unwritten(record, ttl))
                return False
            self._unwritten.pop(key, None)  # this record is newer
            self._writing.add(key)
        written = False
        try:
            written = self._write_now(record, ttl)
        finally:
            with self._lock:
                self._writing.discard(key)
                if not written and key not in self._unwritten:  # else a newer one came
                    self._keep(key, _Unwritten(record, ttl))
                more = bool(self._unwritten)
        if written and more:
            self._flush_soon()
        return written

    def submit(self, task: Callable[[], None]) -> None:
        """Run ``task`` (store work of a job's end) after the records handed over before
        it: by the writer in the background, else now.
        """
        if not self.background:
            task()
            return
        with self._lock:
            self._tasks.append(task)
        self._start_writer()

    def retry_pending(self) -> int:
        """Try to write every kept record now; return how many were written. Stops at the
        first failure (the rest stay kept).
        """
        with self._lock:
            batch = [(k, e) for k, e in self._unwritten.items() if k not in self._writing]
            self._writing.update(key for key, _ in batch)
        written = 0
        for index, (key, entry) in enumerate(batch):
            succeeded = self._write_now(entry.record, entry.ttl)
            with self._lock:
                self._writing.discard(key)
                if not succeeded:
                    self._writing.difference_update(k for k, _ in batch[index + 1 :])
                    break
                if self._unwritten.get(key) is entry:
                    del self._unwritten[key]
            written += 1
        return written

    def flush(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for every record and end handed over to be
        written, and every new job vouched for; return whether everything was. Inline,
        retry once.
        """
        if not self.background:
            self.retry_pending()
            return not self._unwritten
        deadline = time.monotonic() + timeout
        with self._lock:
            self._backoff_until = 0.0  # try now rather than after the retry delay
        self._wake.set()
        with self._progress:
            while self._busy():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._progress.wait(min(left, 0.05))
                self._wake.set()
        return True

    def _busy(self) -> bool:
        """Whether something handed over is not written yet (the caller holds the lock)."""
        return bool(
            self._unwritten
            or self._tasks
            or self._writing
            or self._vouch_needed
            or self._running_task
        )

    def _write_now(self, record: JobRecord, ttl: float | None) -> bool:
        def operation() -> bool:
            store_record(self.store, record, ttl)
            return True

        return self._call("write a job record", operation)[0]

    def _keep(self, key: str, entry: _Unwritten) -> None:
        """Keep ``entry`` as the job's unwritten record (the caller holds the lock)."""
        self._unwritten.pop(key, None)
        self._unwritten[key] = entry
        while len(self._unwritten) > PENDING_LIMIT:
            del self._unwritten[next(iter(self._unwritten))]

    def _flush_soon(self) -> None:
        """Write the kept records: by the writer in the background, else now."""
        if self.background:
            self._wake.set()
        else:
            self.retry_pending()

    # -- the process's running jobs ------------------------------------------------------

    def track(self, job: Supervision) -> None:
        """Vouch for ``job`` while it runs (in the background: renewed by the writer)."""
        with self._lock:
            self._active[job.supervision_id] = job
            self._vouch_needed = self.background
        if self.background:
            self._start_writer()

    def untrack(self, job: Supervision) -> None:
        """Stop vouching for ``job`` (it ended; its end is being written)."""
        with self._lock:
            self._active.pop(job.supervision_id, None)

    def follow(self, store: Store) -> None:
        """Write the running jobs again each time ``store`` goes degraded (it then works
        from memory, which must hold the jobs this process watches); nothing for a store
        that is not a :class:`~chaperone.store.ResilientStore`.
        """
        if not isinstance(store, ResilientStore):
            return

        def on_change(change: StoreChange) -> None:
            if change.state is StoreState.DEGRADED:
                self.rewrite_active()

        store.add_listener(on_change)

    def rewrite_active(self) -> None:
        """Write every running job's whole record again, soon: when the store went
        degraded, what it works from (memory) must hold the jobs this process watches.
        """
        if not self.background:
            for job in self.active:
                self.write(job.current_record())
            return
        with self._lock:
            self._rewrite = True
            self._vouch_needed = True
        self._wake.set()

    def _vouch(self) -> None:
        """Renew this process's vouch for each of its running jobs."""
        now = self.clock.timestamp()
        for job in self.active:
            supervision_id = job.supervision_id

            def renew(supervision_id: str = supervision_id) -> None:
                self.store.set(_keys.alive_key(supervision_id), self.description, self.lease)
                self.store.schedule(
                    _keys.DEADLINES, _keys.member(supervision_id, "abandon"), now + self.lease
                )

            if not self._call("vouch for a running job", renew)[0]:
                return

    # -- the writer thread ---------------------------------------------------------------

    def _start_writer(self) -> None:
        if os.getpid() != self._fork_pid:  # a forked child: the parent's thread is not here
            self._fork_pid = os.getpid()
            self._writer = None
        if self._writer is None or not self._writer.is_alive():
            with self._lock:
                if self._writer is None or not self._writer.is_alive():
                    self._writer = threading.Thread(
                        target=self._run_writer, name="chaperone-supervisor", daemon=True
                    )
                    self._writer.start()
        self._wake.set()

    def _run_writer(self) -> None:
        while True:
            self._wake.wait(timeout=1.0)
            self._wake.clear()
            try:
                self._cycle()
            except Exception:  # a bug of ours must not end the writer
                _log.exception("supervision writer failed; going on")
            with self._progress:
                self._progress.notify_all()

    def _cycle(self) -> None:
        """One round of the writer: rewrites, records, ends, vouches, then the hook."""
        now = time.monotonic()
        if now >= self._backoff_until:
            with self._lock:
                rewrite, self._rewrite = self._rewrite, False
            if rewrite:
                for job in self.active:
                    with self._lock:
                        self._keep(job.supervision_id, _Unwritten(job.current_record(), None))
            self.retry_pending()
            while self._tasks and time.monotonic() >= self._backoff_until:
                with self._lock:
                    task = self._tasks.popleft() if self._tasks else None
                    self._running_task = task is not None
                if task is None:
                    break
                try:
                    task()
                except Exception:
                    _log.exception("recording a job's end failed")
                finally:
                    with self._lock:
                        self._running_task = False
                # What the task handed over (the final record) is written now.
                self.retry_pending()
            if now >= self._lease_due or self._vouch_needed:
                self._lease_due = now + self.lease / 3
                self._vouch_needed = False
                self._vouch()
        hook = self.on_cycle
        if hook is not None:
            try:
                hook()
            except Exception:
                _log.exception("supervision cycle hook failed")
        if self._unwritten or self._tasks:
            # Come back when the retry delay has passed (the wait ends early if woken).
            delay = max(0.0, self._backoff_until - time.monotonic())
            if delay == 0.0:
                self._wake.set()

    # -- reads for the CLI ---------------------------------------------------------------

    def read(self, supervision_id: str) -> JobRecord | None:
        """Read a job's record, or None."""
        text = self.store.get(_keys.job_key(supervision_id))
        return None if text is None else JobRecord.from_json(text)

    def heartbeat(
        self,
        supervision_id: str,
        *,
        progress: tuple[int, int | None] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> JobRecord | None:
        """Record a heartbeat for a job this process does not hold a handle of (the
        ``chaperone heartbeat`` command); return the updated record, None if unknown.
        """
        record = self.read(supervision_id)
        if record is None:
            return None
        if record.state is not JobState.RUNNING:
            return record  # finished: rewriting would drop the record's retention TTL
        changes: dict[str, Any] = {"last_heartbeat": self.clock.timestamp()}
        if metadata:
            changes["metadata"] = {**record.metadata, **metadata}
        if progress is not None:
            changes["progress_current"], changes["progress_total"] = progress
        record = attrs.evolve(record, **changes)
        self._write_now(record, None)
        return record

    def close_incidents(self, supervision_id: str) -> tuple[IncidentRef, ...]:
        """Close every open incident of a job; return those this call closed."""
        return close_incidents(self.store, supervision_id)


def store_record(store: Store, record: JobRecord, ttl: float | None = None) -> None:
    """Write a job record (expiring after ``ttl`` seconds, never when None) and
    (re)schedule or drop its stuck and timeout checks; store errors are raised.
    """
    store.set(_keys.job_key(record.supervision_id), record.to_json(), ttl)
    if record.last_heartbeat is None or record.finished_at is not None:
        note_run(store, record)  # a start or an end: not every heartbeat
    for check, deadline in (
        ("stuck", record.stuck_deadline),
        ("timeout", record.timeout_deadline),
    ):
        name = _keys.member(record.supervision_id, check)
        if deadline is None:
            store.unschedule(_keys.DEADLINES, name)
        else:
            store.schedule(_keys.DEADLINES, name, deadline)


def close_incidents(store: Store, supervision_id: str) -> tuple[IncidentRef, ...]:
    """Close every open incident of a job; return those this call closed (each by one
    caller only, however many close at once).
    """
    closed = []
    for key in store.keys(_keys.incident_prefix(supervision_id)):
        value = store.get(key)
        if value is not None and store.delete(key):
            data = json.loads(value)
            closed.append(IncidentRef(type=data["type"], key=data["key"]))
    return tuple(closed)
