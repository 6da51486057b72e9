"""Chaperone watching itself: a failing part of Chaperone is an incident like a job's.

The parts are ``store``, ``detection``, ``outbox`` and ``channel:<name>`` (with
``@<route>`` for a route's own settings of a channel: another webhook, another key, see
:func:`part_of`). Whoever sees a
part fail calls :meth:`SelfWatch.failing`; whoever sees it work, :meth:`SelfWatch.working`.
The first failure raises a ``chaperone_degraded`` alert (severity critical, keyed by the
part), the first success after it resolves the alert. Both go out without the store and
without the filters (:meth:`chaperone._dispatch.Dispatcher.process_direct`): the store may be the
part that fails, and a degraded alert must not wait in a maintenance window or a group.
They are rate-limited here, in memory: a part that fails again within
:data:`REALERT_AFTER` of its last alert is recorded (and counted by health) but not
alerted again, and its recovery then goes unsaid too.

An alert about ``channel:<name>`` goes to every destination but the failing one. When no
channel confirms a degraded alert, its line is written to standard error anyway, so that
a console sees it when everything else is down.

Each failing part is also recorded in the store (``degraded:<part>``, see
:mod:`chaperone.metrics._liveness`) and refreshed while it lasts, for ``chaperone health``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import socket
import sys
import threading
import time
import weakref
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import attrs
import structlog

from chaperone._clock import utc_from_timestamp
from chaperone._events import ChaperoneDegraded, ChaperoneRecovered, Event
from chaperone._secrets import MASKER, describe
from chaperone._verdicts import Destination
from chaperone.metrics._liveness import DegradedRecord, degraded_key

if TYPE_CHECKING:
    from chaperone._runtime import Runtime

__all__ = [
    "REALERT_AFTER",
    "RECORD_REFRESH",
    "DeliverDirect",
    "SelfWatch",
    "describe_process",
    "part_of",
]

_log = structlog.get_logger("chaperone.degraded")

REALERT_AFTER: Final = 600.0
"""Seconds after a part's degraded alert before another one is sent for that part."""
RECORD_REFRESH: Final = 60.0
"""Seconds between two rewrites of a failing part's ``degraded:<part>`` record."""
_REASON_LIMIT: Final = 500

DeliverDirect = Callable[[Event, Callable[[Destination], bool]], Coroutine[Any, Any, bool]]
"""Deliver an event's alerts without the store and the filters to every destination but
those the callable says to skip; return whether some channel confirmed one."""
Submit = Callable[[Coroutine[Any, Any, None]], concurrent.futures.Future[None]]

_WATCHES: weakref.WeakValueDictionary[int, SelfWatch] = weakref.WeakValueDictionary()


def part_of(destination: Destination) -> str:
    """The part a destination is: ``channel:<name>``, or ``channel:<name>@<route>`` for a
    route that gives the channel settings of its own (another webhook URL, another key).
    """
    if destination.settings and destination.route != "default":
        return f"channel:{destination.channel}@{destination.route}"
    return f"channel:{destination.channel}"


def describe_process() -> str:
    """Name the current process as a person would: ``chaperone run (pid 4242 on web-1)``."""
    words = [Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"]
    if len(sys.argv) > 1 and not sys.argv[1].startswith("-"):
        words.append(sys.argv[1])
    return f"{' '.join(words)[:60]} (pid {os.getpid()} on {socket.gethostname()})"


@attrs.define
class _Failure:
    since: float
    reason: str
    alerted: bool
    recorded_at: float = float("-inf")


class SelfWatch:
    """The parts of one runtime's Chaperone that fail right now, and their alerts."""

    def __init__(self, runtime: Runtime, *, deliver: DeliverDirect, submit: Submit) -> None:
        """Watch the Chaperone whose hooks get ``runtime``; its alerts are sent with
        ``deliver``, each run on the delivery loop with ``submit`` (never waited for).
        """
        self._runtime = runtime
        self._deliver_direct = deliver
        self._run_on_loop = submit
        self._lock = threading.Lock()
        self._failing: dict[str, _Failure] = {}
        self._last_alerted: dict[str, float] = {}
        self._looked_at: dict[str, float] = {}
        self._part_locks: dict[str, asyncio.Lock] = {}  # used on the delivery loop only
        self._pending: set[concurrent.futures.Future[None]] = set()
        self.process = describe_process()
        _WATCHES[id(runtime)] = self

    @staticmethod
    def of(runtime: Runtime) -> SelfWatch | None:
        """The self-watch of the running Chaperone whose hooks get ``runtime`` (None for a
        runtime no Chaperone runs, as in a test of a hook alone).
        """
        watch = _WATCHES.get(id(runtime))
        return watch if watch is not None and watch._runtime is runtime else None

    # -- what the rest of Chaperone reports ----------------------------------------------

    def failing(self, part: str, reason: str) -> None:
        """Note that ``part`` fails for ``reason``; the first time, alert. Never raises,
        never blocks on the network.
        """
        reason = MASKER.mask(reason)[:_REASON_LIMIT]
        now = self._runtime.clock.timestamp()
        with self._lock:
            current = self._failing.get(part)
            if current is not None:
                current.reason = reason
                return
            last = self._last_alerted.get(part)
            alert = last is None or now - last >= REALERT_AFTER
            if alert:
                self._last_alerted[part] = now
            failure = _Failure(since=now, reason=reason, alerted=alert)
            self._failing[part] = failure
        _log.error("chaperone degraded", part=part, reason=reason, alerted=alert)
        self._record(part, failure)
        if alert:
            self._submit(
                ChaperoneDegraded(
                    part=part,
                    reason=reason,
                    since=utc_from_timestamp(now),
                    process=self.process,
                    occurred_at=utc_from_timestamp(now),
                ),
                part,
            )

    def working(self, part: str) -> None:
        """Note that ``part`` works; when it was failing, resolve its alert. When it was
        not, it may have been failing in another process (which may be gone): at most once
        per :data:`RECORD_REFRESH` its record is looked for, cleared, and its alert
        resolved from here. Cheap otherwise (a dictionary lookup), so callers may say it
        after every success.
        """
        if part not in self._failing:
            self._clear_others(part)
            return
        with self._lock:
            failure = self._failing.pop(part, None)
        if failure is None:
            return
        _log.warning("chaperone recovered", part=part)
        try:
            self._runtime.store.delete(degraded_key(part))
        except Exception as exc:
            _log.warning("could not clear a degraded record", part=part, error=describe(exc))
        if failure.alerted:
            self._resolve(part, failure.since)

    def _clear_others(self, part: str) -> None:
        now = self._runtime.clock.timestamp()
        last = self._looked_at.get(part)
        if last is not None and now - last < RECORD_REFRESH:
            return
        self._looked_at[part] = now
        store = self._runtime.store
        try:
            text = store.get(degraded_key(part))
            if text is None:
                return
            record = DegradedRecord.from_json(text)
            if not store.delete(degraded_key(part)):
                return  # cleared by someone else meanwhile
        except Exception as exc:
            _log.warning("could not clear a degraded record", part=part, error=describe(exc))
            return
        _log.warning("chaperone recovered", part=part, seen_failing_by=record.pid)
        self._resolve(part, record.since)

    def _resolve(self, part: str, since: float) -> None:
        """Send the resolve of ``part``'s degraded alert (failing since ``since``)."""
        now = self._runtime.clock.timestamp()
        recovered = ChaperoneRecovered(
            part=part,
            since=utc_from_timestamp(since),
            process=self.process,
            occurred_at=utc_from_timestamp(now),
        )
        self._submit(recovered, part)

    @property
    def failing_parts(self) -> dict[str, str]:
        """The parts failing now, with their reasons."""
        with self._lock:
            return {part: failure.reason for part, failure in self._failing.items()}

    def refresh(self) -> None:
        """Rewrite the store records of the parts still failing when they are due (the
        monitor calls this every tick), so health keeps seeing them while they last.
        """
        now = self._runtime.clock.timestamp()
        with self._lock:
            due = [
                (part, failure)
                for part, failure in self._failing.items()
                if now - failure.recorded_at >= RECORD_REFRESH
            ]
        for part, failure in due:
            self._record(part, failure)

    def wait(self, timeout: float) -> int:
        """Wait up to ``timeout`` seconds for the alerts being sent; return how many are
        still on their way.
        """
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                pending = list(self._pending)
            left = deadline - time.monotonic()
            if not pending or left <= 0:
                return len(pending)
            # An alert that failed everywhere may raise others (its channels failing).
            concurrent.futures.wait(pending, timeout=left)

    # -- inside ----------------------------------------------------------------------------

    def _record(self, part: str, failure: _Failure) -> None:
        record = DegradedRecord(
            part=part,
            reason=failure.reason,
            since=failure.since,
            host=socket.gethostname(),
            pid=os.getpid(),
        )
        try:
            record.write(self._runtime.store)
        except Exception as exc:
            _log.warning("could not record a degraded part", part=part, error=describe(exc))
            return
        failure.recorded_at = self._runtime.clock.timestamp()

    def _submit(self, event: Event, part: str) -> None:
        """Deliver ``event`` on the runtime's delivery loop without waiting for it."""
        try:
            future = self._run_on_loop(self._deliver(event, part))
        except Exception as exc:
            _log.error("could not send a degraded alert", part=part, error=describe(exc))
            _console(event, part)
            return
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._forget)

    def _forget(self, future: concurrent.futures.Future[None]) -> None:
        with self._lock:
            self._pending.discard(future)

    async def _deliver(self, event: Event, part: str) -> None:
        # One part's alerts go out in the order raised: a resolve never overtakes its firing.
        lock = self._part_locks.setdefault(part, asyncio.Lock())
        async with lock:
            await self._deliver_now(event, part)

    async def _deliver_now(self, event: Event, part: str) -> None:
        try:
            confirmed = await self._deliver_direct(event, lambda where: part_of(where) == part)
        except asyncio.CancelledError:
            _console(event, part)
            raise
        except Exception as exc:
            _log.error("could not send a degraded alert", part=part, error=describe(exc))
            _console(event, part)
            return
        if not confirmed:
            _console(event, part)


def _console(event: Event, part: str) -> None:
    """Write the degraded alert's line to standard error, as the ``log`` channel would."""
    if isinstance(event, ChaperoneDegraded):
        line = f"[FIRING] Chaperone Degraded: {part}: {event.reason}"
    else:
        line = f"[RESOLVED] Chaperone Recovered: {part}"
    try:
        sys.stderr.write(MASKER.mask(line) + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass  # standard error itself is gone: nothing is left to write to
