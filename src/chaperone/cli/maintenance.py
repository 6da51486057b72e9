r"""``chaperone maintenance start|end|status``: maintenance windows from the command line.

``start 30m --match job_class='App\Jobs\*'`` suppresses the alerts the window matches
for 30 minutes; ``end`` ends it early and delivers the summary of what it suppressed (a
running ``chaperone monitor`` delivers it when a window ends on its own); ``status``
lists the windows on now and the recurring ones of the config file.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import click

from chaperone._clock import SystemClock
from chaperone._durations import format_duration, format_time, parse_duration
from chaperone._matching import parse_match
from chaperone._verdicts import VerdictKind
from chaperone.cli._context import (
    EXIT_CONFIG,
    EXIT_FAILED,
    configured_settings_and_store,
    configured_store,
    runtime_or_exit,
)
from chaperone.cli._output import echo, error, print_json, print_table
from chaperone.config import Settings
from chaperone.maintenance import (
    Ending,
    UnknownWindowError,
    describe_window,
    end_windows,
    start_window,
    status,
)

if TYPE_CHECKING:
    from chaperone._dispatch import DispatchReport  # the delivery machinery: only for end

__all__ = ["maintenance"]


@click.group("maintenance")
def maintenance() -> None:
    """Maintenance windows: suppress the alerts they match, then summarise what was hidden."""


def _time(text: str | None) -> str:
    return format_time(None if text is None else datetime.fromisoformat(text))


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


@maintenance.command("start")
@click.argument("duration")
@click.option("--reason", default="", metavar="TEXT", help="Why; shown in the summary.")
@click.option(
    "--match",
    "matches",
    multiple=True,
    metavar="KEY=GLOB",
    help="Only alerts whose KEY (type, job_class, service, severity, priority, key, or a "
    "label) matches GLOB. Repeatable: different keys must all match, the same key twice "
    "means either glob. Without --match the window suppresses every alert.",
)
@click.option("--no-summary", is_flag=True, help="Send no summary when the window ends.")
@click.option("--json", "as_json", is_flag=True, help="Print the window as JSON.")
def start(
    duration: str, reason: str, matches: tuple[str, ...], no_summary: bool, as_json: bool
) -> None:
    r"""Start a maintenance window lasting DURATION (30m, 1h, 90 seconds...).

    Example: chaperone maintenance start 30m --match job_class='App\Jobs\*' --reason deploy
    """
    try:
        length = parse_duration(duration)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="DURATION") from None
    if length <= timedelta(0):
        raise click.BadParameter(
            "a maintenance window must last more than 0s", param_hint="DURATION"
        )
    try:
        matcher = parse_match(list(matches))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--match") from None
    with configured_store() as store:
        now = SystemClock().now()
        window = start_window(store, now, length, matcher, reason, summary=not no_summary)
    if as_json:
        print_json(describe_window(window, now, None) | {"suppressed": 0})
        return
    echo(
        f"maintenance window {window.id} is on until {format_time(window.ends_at)} "
        f"({format_duration(length)})"
    )
    echo(f"  matches: {matcher.describe()}")
    if window.reason:
        echo(f"  reason: {window.reason}")
    echo(
        "  when it ends, a summary of what it suppressed goes out (from a running "
        f"`chaperone monitor`, or `chaperone maintenance end {window.id}`)"
        if window.summary
        else "  no summary will be sent when it ends"
    )


def _summary_outcome(report: DispatchReport, settings: Settings) -> tuple[str, str, list[Any]]:
    """``(delivered | failed | skipped, what happened, per-delivery rows)`` for one
    summary. Alerting turned off is no failure; a pipeline that failed is.
    """
    if report.skipped:
        status = "failed" if settings.enabled else "skipped"
        return status, f"summary not sent: {report.skipped}", []
    rows: list[dict[str, Any]] = []
    failed = not report.alerts
    for alert_report in report.alerts:
        if alert_report.verdict.kind is not VerdictKind.SEND:
            failed = True
            rows.append(
                {
                    "channel": None,
                    "status": alert_report.verdict.kind.value,
                    "detail": alert_report.verdict.reason,
                }
            )
            continue
        if not alert_report.deliveries:
            failed = True
            rows.append({"channel": None, "status": "failed", "detail": "routed to no channel"})
        for result in alert_report.deliveries:
            failed = failed or not result.ok
            rows.append(
                {
                    "channel": result.destination.channel,
                    "status": "delivered" if result.ok else "failed",
                    "detail": result.outcome.detail,
                }
            )
    delivered = [row["channel"] for row in rows if row["status"] == "delivered"]
    problems = [
        f"{row['channel'] or 'summary'}: {row['status']}"
        + (f" ({row['detail']})" if row["detail"] else "")
        for row in rows
        if row["status"] != "delivered"
    ]
    if failed:
        text = "summary failed: " + "; ".join(problems or ["no delivery"])
        if delivered:
            text += f" (delivered to {', '.join(delivered)})"
        return "failed", text, rows
    return "delivered", f"summary delivered to {', '.join(delivered)}", rows


@maintenance.command("end")
@click.argument("window_id", metavar="[ID]", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, one object per window.")
def end(window_id: str | None, as_json: bool) -> None:
    """End maintenance window ID now (without ID: every ad-hoc window that is on) and
    deliver the summary of what each suppressed.

    Exits 1 when a summary could not be delivered.
    """
    results: list[dict[str, Any]] = []
    any_failed = False
    with runtime_or_exit() as runtime:
        now = runtime.clock.now()
        try:
            endings = end_windows(runtime.settings, runtime.store, now, window_id)
        except UnknownWindowError:
            error(
                f"error: no maintenance window {window_id!r} is known "
                "(see `chaperone maintenance status`)"
            )
            raise SystemExit(EXIT_CONFIG) from None
        for ending in endings:
            result = _ending_result(ending)
            if ending.event is not None:
                report = runtime.dispatch(ending.event)
                status, text, rows = _summary_outcome(report, runtime.settings)
                any_failed = any_failed or status == "failed"
                result.update(summary=status, detail=text, deliveries=rows)
            results.append(result)
    if as_json:
        print_json(results)
    elif not results:
        echo("no maintenance window is on")
    else:
        for result in results:
            echo(_ending_line(result))
    if any_failed:
        raise SystemExit(EXIT_FAILED)


def _ending_result(ending: Ending) -> dict[str, Any]:
    window = ending.window
    return {
        "id": window.id,
        "kind": window.kind,
        "reason": window.reason,
        "matches": window.match.describe(),
        "ended_now": ending.ended_now,
        "ended_at": window.end.isoformat(),
        "suppressed": ending.suppressed.total,
        "suppressed_by_type": dict(ending.suppressed.by_type),
        "summary": "skipped",
        "detail": f"no summary: {ending.note}" if ending.note else "",
        "deliveries": [],
    }


def _ending_line(result: dict[str, Any]) -> str:
    verb = "ended" if result["ended_now"] else f"had ended at {_time(result['ended_at'])}"
    by_type = ", ".join(f"{name} {count}" for name, count in result["suppressed_by_type"].items())
    counts = _plural(result["suppressed"], "alert") + " suppressed"
    if by_type:
        counts += f" ({by_type})"
    detail = f"; {result['detail']}" if result["detail"] else ""
    return f"{result['id']} {verb}: {counts}{detail}"


@maintenance.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, one object per window.")
def status_command(as_json: bool) -> None:
    """List the maintenance windows on now (with what each suppressed so far) and the
    recurring windows of the config file with their next occurrence.
    """
    with configured_settings_and_store() as (settings, store):
        rows = status(settings, store, SystemClock().now())
    if as_json:
        print_json(rows)
        return
    if not rows:
        echo("no maintenance window is on, and none recurs in the config")
        return
    print_table(
        "Maintenance windows",
        ["id", "kind", "state", "from", "to", "remaining", "suppressed", "matches", "reason"],
        [
            [
                row["id"],
                row["kind"],
                "on" if row["active"] else "next",
                _time(row["from"] if row["active"] else row["next_from"]),
                _time(row["to"] if row["active"] else row["next_to"]),
                format_duration(timedelta(seconds=row["remaining"]))
                if row["remaining"] is not None
                else "",
                row["suppressed"] if row["suppressed"] is not None else "",
                row["matches"],
                row["reason"],
            ]
            for row in rows
        ],
    )
