"""``chaperone health``: delivery counts from the store and whether the recent failure
rate is below the threshold (exit 0) or at or above it (exit 1).
"""

from __future__ import annotations

from datetime import timedelta

import click

from chaperone._clock import SystemClock
from chaperone._durations import format_duration, parse_duration
from chaperone.cli._context import EXIT_FAILED, configured_store, load_or_exit
from chaperone.cli._output import echo, print_json, print_table
from chaperone.metrics import BUCKET_SECONDS, RETENTION_SECONDS, DeliveryStats, read_delivery_stats

__all__ = ["health"]


def _window(_ctx: click.Context, _param: click.Parameter, value: str | None) -> timedelta | None:
    """Read --window: a duration from a minute to a day (``30m``, ``1h``, ``3600``)."""
    if value is None:
        return None
    try:
        window = parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if not timedelta(seconds=BUCKET_SECONDS) <= window <= timedelta(seconds=RETENTION_SECONDS):
        raise click.BadParameter("expected a window from 1m to 1d (counts are kept per minute)")
    return window


@click.command("health")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: healthy, stats, failure_rate.")
@click.option(
    "--window",
    metavar="DURATION",
    callback=_window,
    help="Measure the failure rate over this recent stretch, 1m to 1d "
    "[default: CHAPERONE_HEALTH_WINDOW, 1h].",
)
def health(as_json: bool, window: timedelta | None) -> None:
    """Show sent and failed deliveries by channel and alert type, and the failure rate over
    the recent window; exit 1 when it is at or above CHAPERONE_HEALTH_FAILURE_THRESHOLD
    (5 % by default), 0 otherwise (also when nothing was delivered in the window).
    """
    settings = load_or_exit()
    with configured_store() as store:
        stats = read_delivery_stats(
            store,
            now=SystemClock().timestamp(),
            window=window or settings.health.window,
            threshold=settings.health.failure_threshold,
        )
    if as_json:
        print_json(stats.to_dict())
    else:
        _print(stats)
    if not stats.healthy:
        raise SystemExit(EXIT_FAILED)


def _print(stats: DeliveryStats) -> None:
    recent, threshold = stats.recent, f"{stats.threshold:g}%"
    span = format_duration(stats.window)
    if recent.total:
        echo(
            f"{'healthy' if stats.healthy else 'UNHEALTHY'}: {recent.failed} of "
            f"{recent.total} deliveries failed in the last {span} "
            f"({stats.failure_rate:.2f}%; unhealthy at {threshold})"
        )
    else:
        echo(f"healthy: no deliveries in the last {span} (unhealthy at {threshold} failed)")
    totals = stats.totals
    echo(f"all time: {totals.sent} sent, {totals.failed} failed")
    for title, column, groups in (
        ("By channel", "channel", stats.by_channel),
        ("By alert type", "type", stats.by_type),
    ):
        if groups:
            print_table(
                title,
                [column, "sent", "failed"],
                [[name, counts.sent, counts.failed] for name, counts in groups.items()],
            )
