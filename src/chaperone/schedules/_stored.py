"""Schedules in the store: those declared in code or on the command line, the paused
ones, when a schedule was first seen or resumed, and what one read tells of a job's
schedule (:class:`ScheduleFacts`). The keys are listed in ``chaperone.schedules._keys``;
each job's newest run is kept by supervision (``chaperone.supervision._last_run``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import attrs

from chaperone.schedules import _keys
from chaperone.schedules._model import Overlap, Schedule
from chaperone.store import Store
from chaperone.supervision._keys import last_run_key
from chaperone.supervision._last_run import LastRun, parse_last_run

if TYPE_CHECKING:
    from chaperone.config import Settings

__all__ = [
    "Declaration",
    "ScheduleFacts",
    "all_schedules",
    "declarations",
    "declare",
    "declared",
    "first_seen",
    "forget",
    "is_paused",
    "pause",
    "read_facts",
    "read_facts_many",
    "resume",
    "schedule_data",
    "schedule_of",
]

_FOREVER = 100 * 365 * 86400.0
"""A TTL for keys meant to stay (``set_if_absent`` needs one)."""


@attrs.frozen(kw_only=True)
class Declaration:
    """A schedule declared outside the configuration: by whom, first and last when."""

    schedule: Schedule
    declared_by: str
    """What declared it: ``chaperone run on HOST``, ``code in pid N on HOST``..."""
    declared_at: datetime
    refreshed_at: datetime


def schedule_data(schedule: Schedule) -> dict[str, Any]:
    """``schedule`` as JSON-ready data (the inverse of reading a declaration)."""

    def seconds(delta: timedelta | None) -> float | None:
        return None if delta is None else delta.total_seconds()

    return {
        "job": schedule.job,
        "cron": schedule.cron,
        "timezone": schedule.timezone.key,
        "every": seconds(schedule.every),
        "grace": seconds(schedule.grace),
        "max_runtime": seconds(schedule.max_runtime),
        "overlap": schedule.overlap.value,
        "alert_on_failure": schedule.alert_on_failure,
    }


def _schedule_from(data: dict[str, Any]) -> Schedule:
    def delta(seconds: float | None) -> timedelta | None:
        return None if seconds is None else timedelta(seconds=seconds)

    return Schedule(
        job=data["job"],
        cron=data["cron"],
        timezone=ZoneInfo(data["timezone"]),
        every=delta(data["every"]),
        grace=timedelta(seconds=data["grace"]),
        max_runtime=delta(data["max_runtime"]),
        overlap=Overlap(data["overlap"]),
        alert_on_failure=data["alert_on_failure"],
    )


def _declaration_from(text: str) -> Declaration | None:
    try:
        data = json.loads(text)
        return Declaration(
            schedule=_schedule_from(data["schedule"]),
            declared_by=data["declared_by"],
            declared_at=datetime.fromisoformat(data["declared_at"]),
            refreshed_at=datetime.fromisoformat(data["refreshed_at"]),
        )
    except (ValueError, KeyError, TypeError):
        return None  # written by another version: not ours to guess at


def declare(store: Store, schedule: Schedule, declared_by: str, now: datetime) -> None:
    """Register (or refresh) ``schedule`` in the store, so the monitor watches it; a
    declaration of the same job replaces the one before, keeping when it was first made.
    The monitor looks at the job at its next tick (a changed schedule takes effect then).
    """
    key = _keys.declared_key(schedule.job)
    before = store.get(key)
    declared_at = json.loads(before)["declared_at"] if before else now.isoformat()
    record = {
        "schedule": schedule_data(schedule),
        "declared_by": declared_by,
        "declared_at": declared_at,
        "refreshed_at": now.isoformat(),
    }
    store.set(key, json.dumps(record))
    first_seen(store, schedule.job, now)
    store.schedule(_keys.DEADLINES, schedule.job, now.timestamp())


def declarations(store: Store) -> list[Declaration]:
    """Every declared schedule in the store, by job name (unreadable ones skipped)."""
    found = (
        _declaration_from(text)
        for _key, text in sorted(store.get_many(store.keys(_keys.DECLARED_PREFIX)).items())
    )
    return [declaration for declaration in found if declaration is not None]


def declared(store: Store, job: str) -> Schedule | None:
    """The schedule declared for ``job`` (one read), or None."""
    text = store.get(_keys.declared_key(job))
    declaration = None if text is None else _declaration_from(text)
    return None if declaration is None else declaration.schedule


def all_schedules(settings: Settings, store: Store) -> list[Schedule]:
    """Every schedule: the configuration's, then the declared ones of other jobs (the
    configuration wins for a job both name), sorted by job name.
    """
    configured = {schedule.job: schedule for schedule in settings.schedules}
    for declaration in declarations(store):
        configured.setdefault(declaration.schedule.job, declaration.schedule)
    return [configured[job] for job in sorted(configured)]


def schedule_of(settings: Settings, store: Store, job: str) -> Schedule | None:
    """The schedule of ``job``: the configuration's, else the declared one (one read of
    the store), else None.
    """
    for schedule in settings.schedules:
        if schedule.job == job:
            return schedule
    return declared(store, job)


def pause(store: Store, job: str, now: datetime) -> None:
    """Pause the schedule of ``job``: its state says paused and no missed run is reported
    until it is resumed; an open missed-run alert resolves at the monitor's next tick.
    """
    store.set(_keys.paused_key(job), now.isoformat())
    store.schedule(_keys.DEADLINES, job, now.timestamp())


def resume(store: Store, job: str, now: datetime) -> bool:
    """Resume the schedule of ``job``; return whether it was paused. The runs expected
    while it was paused are not missed ones: the next is expected after ``now``.
    """
    if not store.delete(_keys.paused_key(job)):
        return False
    store.set(_keys.resumed_key(job), now.isoformat())
    store.schedule(_keys.DEADLINES, job, now.timestamp())
    return True


def forget(store: Store, job: str, now: datetime) -> bool:
    """Forget the schedule declared for ``job`` (and its pause and anchors); return
    whether one was declared. The monitor looks at the job at its next tick: without a
    configured schedule it stops watching it, and resolves its open missed-run alert.
    """
    if not store.delete(_keys.declared_key(job)):
        return False
    for key in (_keys.paused_key(job), _keys.resumed_key(job), _keys.seen_key(job)):
        store.delete(key)
    store.schedule(_keys.DEADLINES, job, now.timestamp())
    return True


def is_paused(store: Store, job: str) -> bool:
    """Whether the schedule of ``job`` is paused."""
    return store.get(_keys.paused_key(job)) is not None


def first_seen(store: Store, job: str, now: datetime) -> datetime:
    """When a schedule of ``job`` was first seen (``now`` when this is the first time)."""
    key = _keys.seen_key(job)
    store.set_if_absent(key, now.isoformat(), _FOREVER)
    text = store.get(key)
    return now if text is None else datetime.fromisoformat(text)


@attrs.frozen(kw_only=True)
class ScheduleFacts:
    """What the store says of one job's schedule, read at once."""

    last_run: LastRun | None
    paused: bool
    resumed_at: datetime | None
    seen_at: datetime | None
    missed_claim: dict[str, Any] | None
    """The open missed-run incident's claim, None when none is open."""

    def anchor(self, store: Store, job: str, now: datetime) -> datetime:
        """The moment the next run is expected after: the last start, or when the
        schedule was first seen while the job never ran, or its resumption if later.
        """
        if self.last_run is not None:
            anchor = self.last_run.started_at
        elif self.seen_at is not None:
            anchor = self.seen_at
        else:
            anchor = first_seen(store, job, now)
        return anchor if self.resumed_at is None else max(anchor, self.resumed_at)


def _fact_keys(job: str) -> list[str]:
    """The keys that hold what the store says of ``job``'s schedule, in the order
    :func:`_facts` reads them.
    """
    return [
        last_run_key(job),
        _keys.paused_key(job),
        _keys.resumed_key(job),
        _keys.seen_key(job),
        _keys.missed_key(job),
    ]


def _facts(found: dict[str, str], keys: list[str]) -> ScheduleFacts:
    last, paused, resumed, seen, missed = (found.get(key) for key in keys)
    return ScheduleFacts(
        last_run=parse_last_run(last),
        paused=paused is not None,
        resumed_at=None if resumed is None else datetime.fromisoformat(resumed),
        seen_at=None if seen is None else datetime.fromisoformat(seen),
        missed_claim=None if missed is None else json.loads(missed),
    )


def read_facts(store: Store, job: str) -> ScheduleFacts:
    """Read what the store says of ``job``'s schedule in one ``get_many``."""
    keys = _fact_keys(job)
    return _facts(store.get_many(keys), keys)


def read_facts_many(store: Store, jobs: Sequence[str]) -> list[ScheduleFacts]:
    """:func:`read_facts` of each of ``jobs``, in their order, in one ``get_many`` for
    them all.
    """
    keys = [_fact_keys(job) for job in jobs]
    found = store.get_many([key for each in keys for key in each])
    return [_facts(found, each) for each in keys]
