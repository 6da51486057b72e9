"""``chaperone ack KEY --type TYPE``: acknowledge an open incident (or, ``--undo``, take
the acknowledgement back), and pass it on to the services that carried the incident.
"""

from __future__ import annotations

import getpass
from typing import Any

import click

from chaperone._alerts import AlertStatus
from chaperone._delivery import DeliveryResult, DeliveryStatus
from chaperone._durations import format_time
from chaperone.cli._context import EXIT_FAILED, runtime_or_exit
from chaperone.cli._output import echo, error, print_json
from chaperone.incidents import (
    ActionResult,
    UnknownIncidentError,
    acknowledge_incident,
    unacknowledge_incident,
)

__all__ = ["ack", "login_name"]


def login_name() -> str:
    """The name of the person at this terminal (``unknown`` when the system has none)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


@click.command("ack")
@click.argument("key")
@click.option(
    "--type",
    "alert_type",
    required=True,
    metavar="TYPE",
    help="The incident's alert type (job_stuck, job_timeout, ...): see `chaperone incidents`.",
)
@click.option("--note", default="", metavar="TEXT", help="What you are doing about it.")
@click.option(
    "--by", default=None, metavar="NAME", help="Who acknowledges [default: your login name]."
)
@click.option("--undo", is_flag=True, help="Take the acknowledgement back: repeats resume.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
def ack(key: str, alert_type: str, note: str, by: str | None, undo: bool, as_json: bool) -> None:
    """Acknowledge the open incident KEY of type TYPE: its repeats stop until it resolves,
    and PagerDuty and Opsgenie, where they carried it, are told.

    Example: chaperone ack 550e8400-e29b-41d4-a716-446655440000 --type job_stuck --note "on it"
    """
    name = by if by is not None and by.strip() else login_name()
    with runtime_or_exit() as chaperone:
        try:
            if undo:
                result = unacknowledge_incident(chaperone, alert_type, key, by=name)
            else:
                result = acknowledge_incident(chaperone, alert_type, key, by=name, note=note)
        except UnknownIncidentError as exc:
            error(f"{exc} (`chaperone incidents` lists the open ones)")
            raise SystemExit(EXIT_FAILED) from None
    failed = [item for item in result.deliveries if item.status is DeliveryStatus.FAILED]
    if as_json:
        print_json(_as_json(result, undo))
    else:
        _print(result, undo)
    if failed:
        raise SystemExit(EXIT_FAILED)


def _action(undo: bool) -> str:
    return "unacknowledged" if undo else "acknowledged"


def _delivery_text(result: DeliveryResult) -> str:
    where = result.destination.channel
    if result.destination.route != "default":
        where += f"@{result.destination.route}"
    if result.status is DeliveryStatus.DELIVERED:
        return f"{where}: delivered"
    return f"{where}: {result.status.value} ({result.outcome.detail})"


def _print(result: ActionResult, undo: bool) -> None:
    incident = result.incident
    subject = f"{incident.incident_key} ({incident.title})"
    if not result.changed:
        if undo:
            echo(f"{subject} is not acknowledged: nothing to undo")
        else:
            echo(
                f"{subject} was already acknowledged by {incident.acknowledged_by} "
                f"at {format_time(incident.acknowledged_at)}"
            )
        return
    if undo:
        echo(f"{subject}: acknowledgement taken back; its repeats resume")
    else:
        echo(
            f"{subject} acknowledged by {incident.acknowledged_by}: its repeats stop until "
            "it resolves"
        )
    if result.deliveries:
        echo("passed on to:")
        for delivery in result.deliveries:
            echo(f"  {_delivery_text(delivery)}")
        return
    status = AlertStatus.UNACKNOWLEDGED if undo else AlertStatus.ACKNOWLEDGED
    carried = ", ".join(incident.delivered_to) or "none yet"
    echo(
        f"passed on to no service: none of those that carried it takes the {status.value} "
        f"({carried})"
    )


def _as_json(result: ActionResult, undo: bool) -> dict[str, Any]:
    return {
        "action": _action(undo),
        "changed": result.changed,
        "incident": result.incident.to_dict(),
        "passed_on": [
            {
                "channel": item.destination.channel,
                "route": item.destination.route,
                "status": item.status.value,
                "detail": item.outcome.detail,
            }
            for item in result.deliveries
        ],
    }
