"""Schedules in the store: those declared in code or on the command line, the paused
ones, when a schedule was first seen, and each job's last run.

Keys (all under ``schedules:``):

- ``schedules:declared:<job>``: a schedule declared by ``chaperone run --schedule`` (or
  code), with who declared it and when, refreshed by each run;
- ``schedules:paused:<job>``: the schedule is paused (since when);
- ``schedules:seen:<job>``: when a schedule was first seen, the anchor of its first
  expected run while the job never ran;

Each job's newest run is kept by supervision (``chaperone.supervision._last_run``).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import attrs

from chaperone.schedules._model import Overlap, Schedule
from chaperone.store import Store

if TYPE_CHECKING:
    from chaperone.config import Settings

__all__ = [
    "DECLARED_PREFIX",
    "Declaration",
    "all_schedules",
    "declarations",
    "declare",
    "first_seen",
    "first_seen_many",
    "is_paused",
    "pause",
    "paused_among",
    "resume",
    "schedule_of",
]

DECLARED_PREFIX = "schedules:declared:"
_PAUSED_PREFIX = "schedules:paused:"
_SEEN_PREFIX = "schedules:seen:"
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


def _schedule_data(schedule: Schedule) -> dict[str, Any]:
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


def declare(store: Store, schedule: Schedule, declared_by: str, now: datetime) -> None:
    """Register (or refresh) ``schedule`` in the store, so the monitor watches it; a
    declaration of the same job replaces the one before, keeping when it was first made.
    """
    key = f"{DECLARED_PREFIX}{schedule.job}"
    before = store.get(key)
    declared_at = json.loads(before)["declared_at"] if before else now.isoformat()
    record = {
        "schedule": _schedule_data(schedule),
        "declared_by": declared_by,
        "declared_at": declared_at,
        "refreshed_at": now.isoformat(),
    }
    store.set(key, json.dumps(record))


def declarations(store: Store) -> list[Declaration]:
    """Every declared schedule in the store, by job name (unreadable ones skipped)."""
    found: list[Declaration] = []
    for _key, text in sorted(store.get_many(store.keys(DECLARED_PREFIX)).items()):
        try:
            data = json.loads(text)
            found.append(
                Declaration(
                    schedule=_schedule_from(data["schedule"]),
                    declared_by=data["declared_by"],
                    declared_at=datetime.fromisoformat(data["declared_at"]),
                    refreshed_at=datetime.fromisoformat(data["refreshed_at"]),
                )
            )
        except (ValueError, KeyError, TypeError):
            continue  # written by another version: not ours to guess at
    return found


def all_schedules(settings: Settings, store: Store) -> list[Schedule]:
    """Every schedule: the configuration's, then the declared ones of other jobs (the
    configuration wins for a job both name), sorted by job name.
    """
    configured = {schedule.job: schedule for schedule in settings.schedules}
    for declaration in declarations(store):
        configured.setdefault(declaration.schedule.job, declaration.schedule)
    return [configured[job] for job in sorted(configured)]


def schedule_of(settings: Settings, store: Store, job: str) -> Schedule | None:
    """The schedule of ``job`` (the configuration's, else the declared one), or None: one
    read of the store at most.
    """
    for schedule in settings.schedules:
        if schedule.job == job:
            return schedule
    text = store.get(f"{DECLARED_PREFIX}{job}")
    if text is None:
        return None
    try:
        return _schedule_from(json.loads(text)["schedule"])
    except (ValueError, KeyError, TypeError):
        return None  # written by another version, as declarations() skips it


def pause(store: Store, job: str, now: datetime) -> None:
    """Pause the schedule of ``job``: its state says paused until it is resumed."""
    store.set(f"{_PAUSED_PREFIX}{job}", now.isoformat())


def resume(store: Store, job: str) -> bool:
    """Resume the schedule of ``job``; return whether it was paused."""
    return store.delete(f"{_PAUSED_PREFIX}{job}")


def is_paused(store: Store, job: str) -> bool:
    """Whether the schedule of ``job`` is paused."""
    return store.get(f"{_PAUSED_PREFIX}{job}") is not None


def paused_among(store: Store, jobs: list[str]) -> set[str]:
    """Which of ``jobs`` have their schedule paused, in one read of the store."""
    keys = {f"{_PAUSED_PREFIX}{job}": job for job in jobs}
    return {keys[key] for key in store.get_many(list(keys))}


def first_seen(store: Store, job: str, now: datetime) -> datetime:
    """When a schedule of ``job`` was first seen (``now`` when this is the first time)."""
    key = f"{_SEEN_PREFIX}{job}"
    store.set_if_absent(key, now.isoformat(), _FOREVER)
    text = store.get(key)
    return now if text is None else datetime.fromisoformat(text)


def first_seen_many(store: Store, jobs: list[str], now: datetime) -> dict[str, datetime]:
    """:func:`first_seen` of each of ``jobs``: one read of the store, and a write for each
    job seen for the first time.
    """
    keys = {f"{_SEEN_PREFIX}{job}": job for job in jobs}
    found = store.get_many(list(keys))
    seen = {keys[key]: datetime.fromisoformat(text) for key, text in found.items()}
    for key, job in keys.items():
        if key not in found:
            seen[job] = first_seen(store, job, now)
    return seen
