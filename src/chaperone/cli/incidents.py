"""``chaperone incidents``: the open incidents, firing or acknowledged, newest first."""

from __future__ import annotations

import click

from chaperone._durations import format_time
from chaperone.cli._context import configured_store
from chaperone.cli._output import print_json, print_table
from chaperone.incidents import open_incidents

__all__ = ["incidents"]


@click.command("incidents")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def incidents(as_json: bool) -> None:
    """List the open incidents (an incident opens with its first firing alert and closes
    when it resolves), the one alerted most recently first.
    """
    with configured_store() as store:
        found = open_incidents(store)
    if as_json:
        print_json([incident.to_dict() for incident in found])
        return
    print_table(
        "Open incidents",
        [
            "state",
            "type",
            "key",
            "title",
            "alerts",
            "opened",
            "last alert",
            "acknowledged",
            "sent to",
        ],
        [
            [
                incident.state,
                incident.type,
                incident.key,
                incident.title,
                incident.alerts,
                format_time(incident.opened_at),
                format_time(incident.last_alert_at),
                ""
                if incident.acknowledged_by is None
                else f"by {incident.acknowledged_by} at {format_time(incident.acknowledged_at)}"
                + (f": {incident.ack_note}" if incident.ack_note else ""),
                ", ".join(incident.delivered_to),
            ]
            for incident in found
        ],
    )
