"""Where supervision facts live in the store. One place, so job processes, detectors and
the CLI agree on every key.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "ALIVE_PREFIX",
    "CHECKIN_PREFIX",
    "DEADLINES",
    "DEFAULT_LEASE",
    "EVENTS_QUEUE",
    "FAILURE_PREFIX",
    "INCIDENT_TTL",
    "JOB_PREFIX",
    "RETENTION",
    "alive_key",
    "checkin_lock_key",
    "checkin_runs_key",
    "failure_key",
    "incident_key",
    "incident_prefix",
    "job_key",
    "last_run_key",
    "member",
    "split_member",
]

JOB_PREFIX: Final = "job:"
DEADLINES: Final = "deadlines"
"""The deadline index: members ``<supervision id>|<check>`` due at a Unix time."""
EVENTS_QUEUE: Final = "events"
"""Events raised in job processes (breakers, resources, completions) for the monitor."""
RETENTION: Final = 86400.0
"""A finished job's record stays a day, for ``chaperone jobs`` and the history."""
INCIDENT_TTL: Final = 7 * 86400.0
"""An open incident whose job vanished is forgotten after a week."""
ALIVE_PREFIX: Final = "alive:"
DEFAULT_LEASE: Final = 60.0
"""Seconds a supervising process vouches for its running jobs at a time by default
(``supervision.abandoned_after``); it renews the vouch every third of that. A running
job nobody vouches for any more is abandoned."""

FAILURE_PREFIX: Final = "failed:"
"""Open failure incidents, one per job name (``chaperone.supervision._failures``)."""
CHECKIN_PREFIX: Final = "checkin:"
"""Check-in jobs (``chaperone.supervision.checkins``): their running runs, their lock."""


def alive_key(supervision_id: str) -> str:
    """The key by which a supervising process vouches for a running job."""
    return f"{ALIVE_PREFIX}{supervision_id}"


def job_key(supervision_id: str) -> str:
    """The key of a job's record."""
    return f"{JOB_PREFIX}{supervision_id}"


def last_run_key(job: str) -> str:
    """The key of the newest run of the job named ``job`` (see ``_last_run``)."""
    return f"lastrun:{job}"


def member(supervision_id: str, check: str) -> str:
    """A deadline-index member: which job, which check (stuck, timeout, recovery,
    abandon).
    """
    return f"{supervision_id}|{check}"


def split_member(value: str) -> tuple[str, str]:
    """Undo :func:`member`."""
    supervision_id, _, check = value.rpartition("|")
    return supervision_id, check


def incident_prefix(subject: str) -> str:
    """The prefix of every open incident about ``subject`` (a supervision id, a service)."""
    return f"incident:{subject}:"


def incident_key(subject: str, alert_type: str) -> str:
    """The key that marks an open incident; set-if-absent claims its one report."""
    return f"{incident_prefix(subject)}{alert_type}"


def checkin_runs_key(job: str) -> str:
    """The key listing the running runs of a check-in job (JSON, oldest first)."""
    return f"{CHECKIN_PREFIX}runs:{job}"


def checkin_lock_key(job: str) -> str:
    """The key one check-in of ``job`` holds while it reads and writes the job's runs."""
    return f"{CHECKIN_PREFIX}lock:{job}"


def failure_key(job: str) -> str:
    """The key that marks ``job``'s open failure incident (a job name, not a run's id)."""
    return f"{FAILURE_PREFIX}{job}"
