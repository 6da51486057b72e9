"""The job record: what a supervised job writes about itself, and detectors read."""

from __future__ import annotations

import enum
import json
from datetime import datetime
from typing import Any

import attrs

from chaperone import _sanitize
from chaperone._clock import utc_from_timestamp

__all__ = ["MAX_FLUSH_INTERVAL", "JobRecord", "JobState", "flush_interval"]

MAX_FLUSH_INTERVAL = 1.0
"""A job writes its latest heartbeat at least this often while it heartbeats at all."""


def flush_interval(heartbeat_interval: float | None) -> float:
    """How long a job may hold a heartbeat back before writing it: a quarter of its
    heartbeat interval, at most :data:`MAX_FLUSH_INTERVAL`.
    """
    if heartbeat_interval is None:
        return MAX_FLUSH_INTERVAL
    return min(MAX_FLUSH_INTERVAL, heartbeat_interval / 4)


class JobState(enum.StrEnum):
    """A job's life as the job itself reports it (stuck and timed out are the detectors'
    findings, shown by ``chaperone jobs`` from the open incidents).
    """

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    ABANDONED = "abandoned"
    """Its supervising process stopped vouching for it while it ran (killed, crashed):
    the job may have run on unsupervised."""


def _utc(timestamp: float | None) -> datetime | None:
    return None if timestamp is None else utc_from_timestamp(timestamp)


@attrs.frozen(kw_only=True)
class JobRecord:
    """One supervised job. Times are Unix seconds; durations seconds. The job's name, its
    error and the text in its metadata are made safe and capped as the record is built
    (as an alert's texts are), so any record encodes to JSON for the store.
    """

    supervision_id: str
    name: str = attrs.field(converter=_sanitize.line)
    state: JobState = attrs.field(default=JobState.RUNNING, converter=JobState)
    started_at: float
    last_heartbeat: float | None = None
    heartbeat_interval: float | None = None
    missed_heartbeats: int = 3
    timeout: float | None = None
    memory_limit_mb: float | None = None
    cpu_limit_percent: float | None = None
    progress_current: int | None = None
    progress_total: int | None = None
    metadata: dict[str, Any] = attrs.field(factory=dict, converter=_sanitize.data)
    pid: int | None = None
    host: str | None = None
    finished_at: float | None = None
    error: str | None = attrs.field(default=None, converter=_sanitize.optional_text)
    supervisor: str | None = None
    """The process that supervises the job, as ``pid N on HOST``."""
    lease: float | None = None
    """Seconds that process vouches for the job at a time (renewed every third of it);
    None when it does not vouch (an injected clock), and the job is never abandoned."""
    alert_on_failure: bool = False
    """Whether the run's failure raises ``job_failed`` (its success resolves one anyway)."""
    output: str | None = attrs.field(default=None, converter=_sanitize.optional_tail)
    """The end of a failed run's output, secrets masked, where ``chaperone run`` captured
    it (its end kept when cut: :func:`chaperone._sanitize.tail`)."""

    @property
    def stuck_after(self) -> float | None:
        """Seconds without a heartbeat after which the job counts as stuck."""
        if self.heartbeat_interval is None:
            return None
        return self.heartbeat_interval * self.missed_heartbeats

    @property
    def stuck_deadline(self) -> float | None:
        """When the job is stuck unless it heartbeats before.

        The stored heartbeat may trail the job's latest by up to a flush interval (the
        job coalesces heartbeats), so the deadline allows that much more: a job is never
        reported before ``heartbeat_interval * missed_heartbeats`` of real silence.
        """
        after = self.stuck_after
        if after is None or self.state is not JobState.RUNNING:
            return None
        last = self.last_heartbeat or self.started_at
        return last + after + flush_interval(self.heartbeat_interval)

    @property
    def timeout_deadline(self) -> float | None:
        """When the job times out unless it finishes before."""
        if self.timeout is None or self.state is not JobState.RUNNING:
            return None
        return self.started_at + self.timeout

    def duration(self, now: float) -> float:
        """Seconds the job ran (until ``now`` while it still runs)."""
        return (self.finished_at or now) - self.started_at

    def to_json(self) -> str:
        """Serialise for the store."""
        data = attrs.asdict(self)
        data["state"] = self.state.value
        return json.dumps(data, default=str)

    @classmethod
    def from_json(cls, text: str) -> JobRecord:
        """Read a record written by :meth:`to_json`, of this version or a newer one: a
        field a newer version added is left out, so monitors and job processes of two
        versions share a store during an upgrade.
        """
        data = json.loads(text)
        known = attrs.fields_dict(cls)
        return cls(**{name: value for name, value in data.items() if name in known})

    def to_public(self, now: float, state: str | None = None) -> dict[str, Any]:
        """The JSON ``chaperone jobs --json`` prints, times as ISO 8601."""
        heartbeat = _utc(self.last_heartbeat)
        finished = _utc(self.finished_at)
        return {
            "supervision_id": self.supervision_id,
            "name": self.name,
            "state": state or self.state.value,
            "started_at": _utc(self.started_at).isoformat(),  # type: ignore[union-attr]
            "last_heartbeat": heartbeat.isoformat() if heartbeat else None,
            "finished_at": finished.isoformat() if finished else None,
            "duration": round(self.duration(now), 3),
            "progress": None
            if self.progress_current is None
            else {"current": self.progress_current, "total": self.progress_total},
            "heartbeat_interval": self.heartbeat_interval,
            "timeout": self.timeout,
            "pid": self.pid,
            "host": self.host,
            "error": self.error,
            "supervisor": self.supervisor,
            "metadata": self.metadata,
            "output": self.output,
        }
