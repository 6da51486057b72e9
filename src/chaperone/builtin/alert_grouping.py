r"""Built-in filter: group alerts and hold the surplus for a digest.

Alerts share a group when the fields named by ``alerting.grouping.by`` are equal (by
default type and job class: ``job_stuck|App\Jobs\ImportFeed``). A group's window opens
at its first alert and lasts ``window`` (tumbling). Inside it the first ``after - 1``
alerts go out one by one; from the ``after``-th on they are held, and when the window
closes (or ``flush_at`` alerts are held) the monitor's next tick returns one
:class:`~chaperone.AlertsGrouped` event carrying them, which the built-in alert builder
turns into digest messages. Resolved alerts, test alerts, critical alerts and digests
are never grouped; with ``alerting.priority.low_digest_only`` a low-priority alert is
held from the first.

Everything lives in the store, so any number of processes sharing one store agree and
a monitor that restarts still flushes what was held:

* the window opens with one atomic ``set_if_absent`` (its record names the window);
* alerts are numbered with one atomic ``incr``, so exactly ``after - 1`` go out;
* a held alert is pushed to the window's queue, *then* the window is put in the
  deadline index ``group:due`` at its end (and at once when a ``flush_at`` multiple is
  reached);
* a flush takes a due entry out of the index (``unschedule``: of concurrent flushers
  only one wins it), *then* pops the whole queue.

So after every push an index entry exists that some later flush takes and follows with
a pop, and each held alert is popped exactly once: none is orphaned, none is sent
twice. An alert pushed after its window's last flush (a slow holder) is picked up by
the entry it scheduled itself, on the next tick.

Only a monitor flushes, so alerts are held only while one ticks on the store
(:func:`chaperone.metrics._liveness.monitor_alive`); with none, every alert goes out one by one.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

import attrs
import structlog

from chaperone._alerts import Alert, Priority
from chaperone._durations import format_duration
from chaperone._events import AlertsGrouped
from chaperone._markers import hookimpl
from chaperone._matching import field_value
from chaperone._verdicts import Verdict
from chaperone.metrics._liveness import monitor_alive

if TYPE_CHECKING:
    from chaperone._runtime import Runtime
    from chaperone.config import GroupingSettings
    from chaperone.store import Store

__all__ = [
    "DUE_INDEX",
    "PREFIX",
    "chaperone_detect",
    "chaperone_filter_alert",
    "flush_due",
    "group_key",
]

ORDER: Final = 90
"""Its place among the built-ins, whose hooks are called lowest first (:mod:`chaperone.builtin`)."""
REQUIRED: Final = (
    "the alerts it holds would never be flushed; to stop grouping, set enabled = "
    "false under [alerting.grouping] (what is held is still sent)"
)
"""Why this built-in cannot be disabled: naming it in ``plugins.disable`` is refused."""

PREFIX = "group:"
DUE_INDEX = "group:due"
"""The deadline index of windows with held alerts, at the time they are to be flushed."""

MISSING = "-"
"""A group field the alert does not have (a circuit breaker has no job class)."""

_KEEP = timedelta(days=1).total_seconds()
"""How long a window's counters outlive it: a late flush still reads how many went out."""
_OPEN_ATTEMPTS = 8
"""Tries to open or join a window while others' windows expire under us."""
_FLUSHES_PER_TICK = 100
"""Due entries one tick takes; more wait for the next tick."""
_POP_BATCH = 500
_POP_ROUNDS = 100
_END = "end"
_COUNT = "count"

_log = structlog.get_logger("chaperone.grouping")


def _escape(value: str | None) -> str:
    if value is None:
        return MISSING
    if value == MISSING:
        return "%2D"
    return value.replace("%", "%25").replace("|", "%7C")


def group_key(alert: Alert, by: Iterable[str]) -> str:
    r"""The group of ``alert``: the values of the ``by`` fields joined by ``|``
    (``job_stuck|App\Jobs\ImportFeed``), a missing one as ``-``.

    ``%``, ``|`` and a value that is just ``-`` are percent-escaped, so distinct values
    never make the same key.
    """
    return "|".join(_escape(field_value(alert, name)) for name in by)


@attrs.frozen(kw_only=True)
class _Window:
    """One window of one group, as every process sharing the store sees it."""

    id: str
    group: str
    start: float
    end: float

    @classmethod
    def read(cls, group: str, record: str) -> _Window:
        data = json.loads(record)
        return cls(id=str(data["id"]), group=group, start=data["start"], end=data["end"])

    def record(self) -> str:
        return json.dumps({"id": self.id, "start": self.start, "end": self.end})

    def member(self, kind: str) -> str:
        """Its entry in the deadline index: everything a flush needs, no read required."""
        return json.dumps([kind, self.id, self.start, self.end, self.group])

    @classmethod
    def from_member(cls, member: str) -> _Window:
        _kind, window_id, start, end, group = json.loads(member)
        return cls(id=str(window_id), group=str(group), start=float(start), end=float(end))

    @property
    def queue(self) -> str:
        return f"{PREFIX}held:{self.id}"

    @property
    def numbered(self) -> str:
        """The counter numbering the alerts that may go out one by one."""
        return f"{PREFIX}count:{self.id}"

    @property
    def holding(self) -> str:
        """The counter of held alerts, for the early flush at ``flush_at``."""
        return f"{PREFIX}holding:{self.id}"


def _window_for(store: Store, group: str, now: float, length: float) -> _Window | None:
    """Open the group's window at ``now``, or join the one already open."""
    marker = f"{PREFIX}window:{group}"
    current = store.get(marker)  # the usual case: the window is open already
    if current is not None:
        return _Window.read(group, current)
    for _ in range(_OPEN_ATTEMPTS):
        fresh = _Window(id=uuid.uuid4().hex, group=group, start=now, end=now + length)
        if store.set_if_absent(marker, fresh.record(), length):
            return fresh
        current = store.get(marker)
        if current is not None:
            return _Window.read(group, current)
    return None


@hookimpl
def chaperone_filter_alert(alert: Alert, runtime: Runtime, is_test: bool) -> Verdict | None:
    """Let the first alerts of a group's window through; hold the rest for the digest."""
    grouping = runtime.settings.grouping
    if (
        is_test
        or alert.is_resolved
        or alert.is_digest
        or not grouping.enabled
        or alert.priority is Priority.CRITICAL
    ):
        return None
    length = grouping.window.total_seconds()
    if length <= 0:
        return None
    store = runtime.store
    now = runtime.clock.timestamp()
    key = group_key(alert, grouping.by)
    window = _window_for(store, key, now, length)
    if window is None:
        return None  # could not settle on a window: a duplicate beats a lost alert
    keep = max(window.end - now, 0.0) + _KEEP
    digest_only = runtime.settings.priority.low_digest_only and alert.priority is Priority.LOW
    if digest_only:
        reason = "low priority, digest only"
    else:
        number = store.incr(window.numbered, 1, ttl=keep)
        if number < grouping.after:
            return None
        reason = f"alert {number} of its group in {format_duration(grouping.window)}"
    if not monitor_alive(store):
        return None  # nothing would flush it: better one by one than held for nobody
    held = store.incr(window.holding, 1, ttl=keep)
    # Push first, then schedule: an index entry always follows the newest push.
    store.push(window.queue, json.dumps(alert.to_dict()))
    store.schedule(DUE_INDEX, window.member(_END), window.end)
    if held % max(1, grouping.flush_at) == 0:
        store.schedule(DUE_INDEX, window.member(_COUNT), now)
    return Verdict.hold(key, f"{reason}: held for the digest of {key}")


def _pop_all(store: Store, queue: str) -> tuple[list[Alert], bool]:
    """The alerts held in ``queue``, oldest first, and whether it may hold more (a flush
    takes at most ``_POP_ROUNDS`` batches, so holders that keep pushing cannot keep a
    tick busy).
    """
    alerts: list[Alert] = []
    for _ in range(_POP_ROUNDS):
        records = store.pop(queue, _POP_BATCH)
        for record in records:
            try:
                alerts.append(Alert.from_dict(json.loads(record)))
            except (ValueError, TypeError, KeyError) as exc:
                _log.error(
                    "a held alert could not be read back; it is dropped",
                    queue=queue,
                    error=f"{type(exc).__name__}: {exc}",
                    record=record[:200],
                )
        if len(records) < _POP_BATCH:
            return alerts, False
    return alerts, True


def _sent_individually(store: Store, window: _Window, grouping: GroupingSettings) -> int:
    raw = store.get(window.numbered)
    try:
        numbered = int(raw) if raw is not None else 0
    except ValueError:
        numbered = 0
    return max(0, min(numbered, grouping.after - 1))


def flush_due(runtime: Runtime, now: datetime) -> list[AlertsGrouped]:
    """Take every window due by ``now`` out of the index and return one event per window
    with the alerts it held (none for a window whose alerts an earlier flush took).
    """
    store = runtime.store
    events: list[AlertsGrouped] = []
    for member, _at in store.due(DUE_INDEX, now.timestamp(), _FLUSHES_PER_TICK):
        if not store.unschedule(DUE_INDEX, member):
            continue  # another monitor took this one
        try:
            window = _Window.from_member(member)
        except (ValueError, TypeError) as exc:
            _log.error("unreadable group deadline dropped", member=member[:200], error=str(exc))
            continue
        popped, more = _pop_all(store, window.queue)
        if more:  # the rest goes in the next tick's digest
            store.schedule(DUE_INDEX, member, now.timestamp())
        held = sorted(popped, key=lambda alert: alert.occurred_at)
        if not held:
            continue
        started = datetime.fromtimestamp(window.start, UTC)
        _log.info("flushing a group", group=window.group, held=len(held))
        events.append(
            AlertsGrouped(
                group_key=window.group,
                alerts=held,
                window=timedelta(seconds=max(window.end - window.start, 0.0)),
                window_started=started,
                sent_individually=_sent_individually(store, window, runtime.settings.grouping),
                occurred_at=now,
            )
        )
    return events


@hookimpl
def chaperone_detect(runtime: Runtime, now: datetime) -> list[AlertsGrouped]:
    """Flush the groups whose window closed, or whose held alerts reached ``flush_at``."""
    return flush_due(runtime, now)
