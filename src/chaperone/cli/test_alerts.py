"""``chaperone test-alerts``: send a realistic sample alert of each type, bypassing rate
limits, and say what each channel did with it.

A delivery can end three ways here: delivered, failed (for good: the command exits 1),
or deferred: the service asked to wait longer than is waited inline (a ``Retry-After``),
so the alert stays in the outbox and the monitor (``chaperone monitor``) delivers it
later. A fallback delivery is shown under the channel it stood in for.
"""

from __future__ import annotations

from typing import Any

import click

from chaperone._dispatch import DispatchReport
from chaperone._samples import SAMPLE_TYPES, sample_event
from chaperone._verdicts import VerdictKind
from chaperone.cli._context import EXIT_FAILED, runtime_or_exit, with_channels
from chaperone.cli._output import echo, print_json

__all__ = ["test_alerts"]


def _rows(sample: str, report: DispatchReport) -> list[dict[str, Any]]:
    if report.skipped:
        return [
            {
                "sample": sample,
                "type": None,
                "key": None,
                "channel": None,
                "status": "failed",
                "attempts": 0,
                "detail": report.skipped,
            }
        ]
    rows = []
    for alert_report in report.alerts:
        alert = alert_report.alert
        base = {"sample": sample, "type": alert.type, "key": alert.key, "title": alert.title}
        if alert_report.verdict.kind is not VerdictKind.SEND:
            rows.append(
                {
                    **base,
                    "channel": None,
                    "status": alert_report.verdict.kind.value,
                    "attempts": 0,
                    "detail": alert_report.verdict.reason,
                }
            )
            continue
        if not alert_report.deliveries:
            rows.append(
                {
                    **base,
                    "channel": None,
                    "status": "failed",
                    "attempts": 0,
                    "detail": "routed to no channel",
                }
            )
        for result in alert_report.deliveries:
            rows.append(
                {
                    **base,
                    "channel": result.destination.channel,
                    "fallback_of": result.destination.fallback_of,
                    "status": result.status.value,
                    "attempts": result.attempts,
                    "detail": result.outcome.detail,
                    "deferred_until": result.deferred_until.isoformat()
                    if result.deferred_until
                    else None,
                }
            )
    return rows


def _line(row: dict[str, Any]) -> str:
    mark = {"delivered": "✓", "failed": "✗", "deferred": "…"}.get(row["status"], "-")
    target = f" → {row['channel']}" if row["channel"] else ""
    if row.get("fallback_of"):
        target += f" (fallback for {row['fallback_of']})"
    attempts = f" after {row['attempts']} attempts" if row["attempts"] > 1 else ""
    detail = f": {row['detail']}" if row["detail"] and row["status"] != "delivered" else ""
    status = row["status"]
    if status == "deferred":
        until = f" until {row['deferred_until']}" if row.get("deferred_until") else ""
        status = f"deferred{until}, kept in the outbox"
    alert_type = row["type"] or ""
    return f"{mark} {row['sample']:<15} {alert_type:<18}{target}: {status}{attempts}{detail}"


@click.command("test-alerts")
@click.argument("samples", nargs=-1, type=click.Choice(SAMPLE_TYPES))
@click.option(
    "--channel",
    "channels",
    multiple=True,
    metavar="NAME",
    help="Send to this channel instead of the configured ones (repeatable).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per delivery.")
def test_alerts(samples: tuple[str, ...], channels: tuple[str, ...], as_json: bool) -> None:
    """Send a sample alert of each type (stuck, timeout, circuit-breaker, resource) to the
    configured channels, or to each --channel, bypassing rate limits.

    Exits 1 when a delivery failed for good (even if its fallback channel got the alert);
    a delivery deferred by the service's Retry-After stays in the outbox, and
    `chaperone monitor` delivers it.
    """
    names = tuple(dict.fromkeys(name.strip().lower() for name in channels))
    rows: list[dict[str, Any]] = []
    with runtime_or_exit(with_channels(names)) as runtime:
        for sample in samples or SAMPLE_TYPES:
            report = runtime.dispatch(sample_event(sample, runtime.clock.now()), is_test=True)
            rows.extend(_rows(sample, report))
    if as_json:
        print_json(rows)
    else:
        for row in rows:
            echo(_line(row))
    failed = sum(row["status"] == "failed" for row in rows)
    delivered = sum(row["status"] == "delivered" for row in rows)
    deferred = sum(row["status"] == "deferred" for row in rows)
    if not as_json:
        # Alerts a filter stopped (a maintenance window) are counted, not failures.
        stopped = [
            f"{count} {verdict}"
            for status, verdict in (("suppress", "suppressed"), ("hold", "held"))
            if (count := sum(row["status"] == status for row in rows))
        ]
        waiting = (
            [f"{deferred} deferred (kept in the outbox: `chaperone monitor` delivers them)"]
            if deferred
            else []
        )
        echo(", ".join([f"{delivered} delivered", f"{failed} failed", *waiting, *stopped]))
    if failed:
        raise SystemExit(EXIT_FAILED)
