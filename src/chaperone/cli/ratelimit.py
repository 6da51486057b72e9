"""``chaperone ratelimit clear``: forget rate-limit marks and escalation counts (the seed's
bypassing).
"""

from __future__ import annotations

import click

from chaperone.builtin import escalation_filter, ratelimit_filter
from chaperone.cli._context import configured_store
from chaperone.cli._output import echo

__all__ = ["ratelimit"]


@click.group("ratelimit")
def ratelimit() -> None:
    """Inspect and clear rate limits (fixed windows and escalation counts)."""


@ratelimit.command("clear")
@click.option("--type", "alert_type", metavar="TYPE", help="Alert type, e.g. job_stuck.")
@click.option("--key", metavar="KEY", help="Alert key: a supervision id or a service.")
@click.option(
    "--all", "clear_everything", is_flag=True, help="Clear every rate limit and escalation."
)
def clear(alert_type: str | None, key: str | None, clear_everything: bool) -> None:
    """Clear the rate limit of one alert (--type and --key), or of all (--all).

    Both the fixed-window mark and the escalation count go, so the next alert is sent at
    once and escalation starts again from its first delay.
    """
    if clear_everything:
        if alert_type or key:
            raise click.UsageError("--all clears everything; leave out --type and --key")
        with configured_store() as store:
            marks = ratelimit_filter.clear_all(store)
            escalations = escalation_filter.clear_all(store)
        echo(
            f"cleared {marks} rate limit(s)"
            + (f" and {escalations} escalation(s)" if escalations else "")
        )
        return
    if not (alert_type and key):
        raise click.UsageError("give --type and --key together, or --all")
    with configured_store() as store:
        found = [
            name
            for name, cleared in (
                ("rate limit", ratelimit_filter.clear(store, alert_type, key)),
                ("escalation", escalation_filter.clear(store, alert_type, key)),
            )
            if cleared
        ]
    echo(
        f"cleared the {' and the '.join(found)} of {alert_type}:{key}"
        if found
        else f"no rate limit was set for {alert_type}:{key}"
    )
