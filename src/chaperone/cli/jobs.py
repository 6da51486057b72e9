"""``chaperone jobs``: supervised jobs with their state, heartbeat, progress and duration."""

from __future__ import annotations

import click

from chaperone._clock import SystemClock
from chaperone.cli._context import configured_store
from chaperone.cli._output import print_json, print_table
from chaperone.supervision._listing import STATES, list_jobs

__all__ = ["jobs"]


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
