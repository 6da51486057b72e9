"""``chaperone monitor``: the detection and delivery loop for jobs supervised elsewhere."""

from __future__ import annotations

import signal
import threading
from types import FrameType

import click

from chaperone._monitor import Monitor
from chaperone.cli._context import runtime_or_exit
from chaperone.cli._output import echo
from chaperone.metrics._liveness import ALIVE_TTL

__all__ = ["monitor"]


@click.command("monitor")
@click.option(
    "--interval",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0.05),
    help="Seconds between two detection ticks.",
)
@click.option("--once", is_flag=True, help="Run one tick and exit.")
def monitor(interval: float, once: bool) -> None:
    """Detect stuck and timed-out jobs, queued events and thresholds; deliver the alerts.
    Stops cleanly on SIGTERM or SIGINT, waiting for the deliveries in flight at most
    delivery.exit_grace (the rest stay in the outbox for the next monitor).
    """
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    if not once:
        # Before the runtime is built: a stop asked for during start-up is still clean.
        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
    with runtime_or_exit() as runtime:
        watcher = Monitor(runtime, vouch_for=max(ALIVE_TTL, 3 * interval), interval=interval)
        if once:
            # The deliveries are waited for as the runtime closes: at most the exit grace.
            reports = watcher.tick(wait=0)
            alerts = sum(len(report.alerts) for report in reports)
            echo(f"{len(reports)} event(s), {alerts} alert(s)")
            return
        # A slow channel delays neither the next tick nor the next event's deliveries.
        ticks = watcher.run(interval, stop, wait=0)
        echo(f"monitor stopped after {ticks} tick(s)")
