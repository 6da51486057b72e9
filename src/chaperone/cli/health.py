"""``chaperone health``: would someone be paged? Every health check (the store, a
monitor ticking, detection, the outbox, degraded parts, the delivery failure rate) with
the delivery counts; exit 1 when a check fails, 0 when all pass.
"""

from __future__ import annotations

from datetime import timedelta

import attrs
import click

from chaperone._clock import SystemClock
from chaperone._durations import parse_duration
from chaperone._exceptions import ConfigError
from chaperone.cli._context import EXIT_CONFIG, EXIT_FAILED, load_or_exit, report_config_error
from chaperone.cli._output import echo, print_json, print_table
from chaperone.metrics import BUCKET_SECONDS, RETENTION_SECONDS
from chaperone.metrics._health import HealthReport
from chaperone.metrics._judge import HealthJudge

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
@click.option(
    "--json", "as_json", is_flag=True, help="Print JSON: healthy, checks, stats, failure_rate."
)
@click.option(
    "--window",
    metavar="DURATION",
    callback=_window,
    help="Measure the failure rate over this recent stretch, 1m to 1d "
    "[default: CHAPERONE_HEALTH_WINDOW, 1h].",
)
def health(as_json: bool, window: timedelta | None) -> None:
    """Check that alerts would reach someone: the store answers, a monitor ticked
    recently, detection works, no alert waits too long in the outbox, no part of
    Chaperone is failing, and the delivery failure rate over the recent window is below
    CHAPERONE_HEALTH_FAILURE_THRESHOLD (5 % by default). Exit 1 when a check fails, 0 when
    all pass.
    """
    settings = load_or_exit()
    if window is not None:
        settings = attrs.evolve(settings, health=attrs.evolve(settings.health, window=window))
    judge = HealthJudge(settings, SystemClock())
    try:
        report = judge.report()
    except ConfigError as exc:
        report_config_error(exc)
        raise SystemExit(EXIT_CONFIG) from None
    finally:
        judge.close()
    if as_json:
        print_json(report.to_dict())
    else:
        _print(report)
    if not report.healthy:
        raise SystemExit(EXIT_FAILED)


_MARKS = {True: "✓", False: "✗"}


def _print(report: HealthReport) -> None:
    failed = report.failed
    if failed:
        echo(f"UNHEALTHY: {', '.join(failed)} failed")
    else:
        skipped = [check.name for check in report.checks if check.skipped]
        echo(
            "healthy: every check passed" + (f" ({', '.join(skipped)} skipped)" if skipped else "")
        )
    width = max(len(check.name) for check in report.checks)
    for check in report.checks:
        mark = "-" if check.skipped else _MARKS[check.ok]
        echo(f"{mark} {check.name:<{width}}  {check.detail}")
    stats = report.stats
    if stats is None:
        return
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
