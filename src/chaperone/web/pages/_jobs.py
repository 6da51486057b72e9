"""The job list and the job page (the page every alert's "View Job Details" opens)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

import attrs

from chaperone.builtin.database_channel import read_history
from chaperone.store import Store
from chaperone.supervision import _keys
from chaperone.supervision._listing import STATES, job_state, list_jobs
from chaperone.supervision._records import JobRecord
from chaperone.web.pages._alerts import AlertRow, about_job, group_alerts
from chaperone.web.pages._moments import Moment, moment
from chaperone.web.pages._shapes import IncidentView

__all__ = [
    "ATTENTION_STATES",
    "STATES",
    "JobPage",
    "JobRow",
    "Limit",
    "ResourceSample",
    "TimelineEntry",
    "job_page",
    "job_rows",
]

ATTENTION_STATES: Final = ("running", "stuck", "timed_out", "failed", "abandoned")
"""The states the overview lists: jobs still going, and those someone should look at."""
HISTORY_SCAN: Final = 1000
"""History records read to find a job's alerts (the newest; the history is capped)."""


@attrs.frozen
class Progress:
    """A job's progress: ``current`` of ``total`` (total unknown: None)."""

    current: int
    total: int | None

    @property
    def percent(self) -> int | None:
        """Whole percent done, 0 to 100; None without a total."""
        if not self.total or self.total <= 0:
            return None
        return max(0, min(100, round(100 * self.current / self.total)))


@attrs.frozen
class JobRow:
    """One job in a list."""

    supervision_id: str
    name: str
    state: str
    started: Moment | None
    last_heartbeat: Moment | None
    finished: Moment | None
    duration: float
    progress: Progress | None


def _progress(value: object) -> Progress | None:
    if not isinstance(value, dict) or not isinstance(value.get("current"), int):
        return None
    total = value.get("total")
    return Progress(value["current"], total if isinstance(total, int) else None)


def _row(public: Mapping[str, Any], now: datetime) -> JobRow:
    return JobRow(
        supervision_id=str(public["supervision_id"]),
        name=str(public["name"]),
        state=str(public["state"]),
        started=moment(public.get("started_at"), now),
        last_heartbeat=moment(public.get("last_heartbeat"), now),
        finished=moment(public.get("finished_at"), now),
        duration=float(public.get("duration") or 0.0),
        progress=_progress(public.get("progress")),
    )


def job_rows(
    store: Store,
    now: datetime,
    *,
    states: Sequence[str] = (),
    name: str = "",
) -> list[JobRow]:
    """The jobs in the store, newest first; only those in ``states`` when given, and
    whose name holds ``name`` (any case) when given.
    """
    needle = name.strip().casefold()
    return [
        _row(public, now)
        for public in list_jobs(store, now.timestamp())
        if (not states or public["state"] in states) and needle in str(public["name"]).casefold()
    ]


@attrs.frozen
class Limit:
    """One limit a job runs under, said for a person (``"300 s"``, ``"512 MB"``)."""

    name: str
    value: str


@attrs.frozen
class ResourceSample:
    """A measurement over a limit, kept while the violation is open."""

    measure: str
    limit: float | None
    actual: float | None
    since: Moment | None


@attrs.frozen
class TimelineEntry:
    """One thing that happened to a job."""

    at: Moment
    what: str
    detail: str = ""


@attrs.frozen
class JobPage:
    """Everything the job page shows."""

    job: JobRow
    record: JobRecord
    limits: tuple[Limit, ...]
    samples: tuple[ResourceSample, ...]
    metadata: dict[str, str]
    alerts: tuple[AlertRow, ...]
    incidents: tuple[IncidentView, ...]
    timeline: tuple[TimelineEntry, ...]


def _number(value: float) -> str:
    return f"{value:g}"


def _limits(record: JobRecord) -> tuple[Limit, ...]:
    limits = []
    if record.timeout is not None:
        limits.append(Limit("timeout", f"{_number(record.timeout)} s"))
    if record.heartbeat_interval is not None:
        limits.append(Limit("heartbeat interval", f"{_number(record.heartbeat_interval)} s"))
        limits.append(Limit("stuck after missing", f"{record.missed_heartbeats} heartbeats"))
    if record.memory_limit_mb is not None:
        limits.append(Limit("memory", f"{_number(record.memory_limit_mb)} MB"))
    if record.cpu_limit_percent is not None:
        limits.append(Limit("CPU", f"{_number(record.cpu_limit_percent)} % of a core"))
    return tuple(limits)


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _samples(store: Store, supervision_id: str, now: datetime) -> tuple[ResourceSample, ...]:
    """The open resource violations of the job, each with the sample that opened it."""
    prefix = _keys.incident_key(supervision_id, "resource_violation:")
    values = store.get_many(sorted(store.keys(prefix)))
    samples = []
    for key, text in values.items():
        try:
            data = json.loads(text)
        except ValueError:
            continue
        if not isinstance(data, dict):
            continue
        since = data.get("since")
        samples.append(
            ResourceSample(
                measure=key[len(prefix) :],
                limit=_float(data.get("limit")),
                actual=_float(data.get("actual")),
                since=moment(since, now) if _float(since) is not None else None,
            )
        )
    return tuple(samples)


def _metadata(record: JobRecord) -> dict[str, str]:
    return {
        str(key): value if isinstance(value, str) else json.dumps(value, default=str)
        for key, value in record.metadata.items()
    }


def _timeline(
    record: JobRecord,
    state: str,
    alerts: Sequence[AlertRow],
    incidents: Sequence[IncidentView],
    now: datetime,
) -> tuple[TimelineEntry, ...]:
    entries: list[TimelineEntry] = []

    def add(at: Moment | None, what: str, detail: str = "") -> None:
        if at is not None:
            entries.append(TimelineEntry(at, what, detail))

    add(moment(record.started_at, now), "started", f"on {record.host}" if record.host else "")
    add(moment(record.last_heartbeat, now), "last heartbeat")
    for alert in alerts:
        if alert.by is not None:
            passed_on = ", ".join(delivery.channel for delivery in alert.deliveries)
            detail = [alert.note, f"passed on to {passed_on}" if passed_on else ""]
            add(alert.occurred, f"{alert.status} by {alert.by}", "; ".join(filter(None, detail)))
        else:
            channels = ", ".join(delivery.channel for delivery in alert.deliveries)
            add(alert.occurred, f"alert {alert.status}: {alert.title}", f"to {channels}")
    recorded = {(entry.what, entry.at.iso) for entry in entries}
    for incident in incidents:
        # The acknowledgement in force, unless the history (read only so far) has it.
        acknowledged = moment(incident.acknowledged_at, now)
        what = f"acknowledged by {incident.acknowledged_by or 'someone'}"
        if acknowledged is not None and (what, acknowledged.iso) not in recorded:
            add(acknowledged, what, incident.ack_note)
    add(moment(record.finished_at, now), state, record.error or "")
    return tuple(sorted(entries, key=lambda entry: entry.at.at))


def job_page(
    store: Store, supervision_id: str, now: datetime, incidents: Sequence[IncidentView] = ()
) -> JobPage | None:
    """The job page of ``supervision_id`` at ``now``, or None when no job has that id.
    ``incidents``: the open incidents (those about this job are shown and put on the
    timeline).
    """
    text = store.get(_keys.job_key(supervision_id))
    if text is None:
        return None
    record = JobRecord.from_json(text)
    state = job_state(store, record)
    job = _row(record.to_public(now.timestamp(), state), now)
    history = read_history(store, HISTORY_SCAN)
    alerts = group_alerts((entry for entry in history if about_job(entry, supervision_id)), now)
    mine = tuple(
        incident
        for incident in incidents
        if incident.supervision_id == supervision_id
        or incident.key == supervision_id
        or incident.key.startswith(f"{supervision_id}:")
    )
    return JobPage(
        job=job,
        record=record,
        limits=_limits(record),
        samples=_samples(store, supervision_id, now),
        metadata=_metadata(record),
        alerts=tuple(alerts),
        incidents=mine,
        timeline=_timeline(record, state, alerts, mine, now),
    )
