"""``chaperone ratelimit clear``: forget rate-limit marks (the seed's bypassing)."""

from __future__ import annotations

import click

from chaperone.cli._context import configured_store
from chaperone.cli._output import echo
from chaperone.filters import ratelimit as ratelimit_filter

__all__ = ["ratelimit"]


@click.group("ratelimit")
def ratelimit() -> None:
    """Inspect and clear rate limits."""


@ratelimit.command("clear")
@click.option("--type", "alert_type", metavar="TYPE", help="Alert type, e.g. job_stuck.")
@click.option("--key", metavar="KEY", help="Alert key: a supervision id or a service.")
@click.option("--all", "clear_everything", is_flag=True, help="Clear every rate limit.")
def clear(alert_type: str | None, key: str | None, clear_everything: bool) -> None:
    """Clear the rate limit of one alert (--type and --key), or of all (--all)."""
    if clear_everything:
        if alert_type or key:
            raise click.UsageError("--all clears everything; leave out --type and --key")
        with configured_store() as store:
            echo(f"cleared {ratelimit_filter.clear_all(store)} rate limit(s)")
        return
    if not (alert_type and key):
        raise click.UsageError("give --type and --key together, or --all")
    with configured_store() as store:
        found = ratelimit_filter.clear(store, alert_type, key)
    echo(
        f"cleared the rate limit of {alert_type}:{key}"
        if found
        else f"no rate limit was set for {alert_type}:{key}"
    )
