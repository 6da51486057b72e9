"""``chaperone jobs``: supervised jobs with their state, heartbeat, progress and duration."""

from __future__ import annotations

import click

from chaperone._clock import SystemClock
from chaperone.cli._context import configured_store
from chaperone.cli._output import print_json, print_table
from chaperone.store import Store
from chaperone.supervision import _keys
from chaperone.supervision._records import JobRecord, JobState

__all__ = ["STATES", "job_state", "jobs", "list_jobs"]

STATES = ("running", "stuck", "timed_out", "completed", "failed", "abandoned")


def job_state(store: Store, record: JobRecord) -> str:
    """A job's state as ``chaperone jobs`` shows it: its own, or stuck / timed out while
    the monitor holds such an incident open about it.
    """
    if record.state is not JobState.RUNNING:
        return record.state.value
    open_incidents = store.keys(_keys.incident_prefix(record.supervision_id))
    if _keys.incident_key(record.supervision_id, "job_stuck") in open_incidents:
        return "stuck"
    if _keys.incident_key(record.supervision_id, "job_timeout") in open_incidents:
        return "timed_out"
    return "running"


def list_jobs(store: Store, now: float) -> list[dict[str, object]]:
    """Every job record in the store as ``chaperone jobs --json`` prints it, newest first."""
    values = store.get_many(store.keys(_keys.JOB_PREFIX))
    records = sorted(
        (JobRecord.from_json(text) for text in values.values()),
        key=lambda record: record.started_at,
        reverse=True,
    )
    return [record.to_public(now, job_state(store, record)) for record in records]


@click.command("jobs")
@click.option("--state", type=click.Choice(STATES), help="Only jobs in this state.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def jobs(state: str | None, as_json: bool) -> None:
    """List supervised jobs, newest first: state, last heartbeat, progress, duration."""
    with configured_store() as store:
        rows = list_jobs(store, SystemClock().timestamp())
    if state:
        rows = [row for row in rows if row["state"] == state]
    if as_json:
        print_json(rows)
        return

    def progress(row: dict[str, object]) -> str:
        value = row["progress"]
        if not isinstance(value, dict):
            return ""
        total = value.get("total")
        return f"{value['current']}/{total}" if total is not None else str(value["current"])

    print_table(
        "Supervised jobs",
        ["supervision id", "name", "state", "last heartbeat", "progress", "duration (s)"],
        [
            [
                row["supervision_id"],
                row["name"],
                row["state"],
                row["last_heartbeat"] or "never",
                progress(row),
                row["duration"],
            ]
            for row in rows
        ],
    )
