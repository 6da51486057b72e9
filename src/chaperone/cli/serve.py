"""``chaperone serve``: answer ``GET /health`` and ``GET /metrics`` over HTTP until stopped.

A store that cannot be opened at start does not stop it: ``/health`` answers 503 naming
the reason, and each request tries to open the store again.
"""

from __future__ import annotations

import ipaddress
import signal
import types
from typing import TYPE_CHECKING

import click

from chaperone._clock import SystemClock
from chaperone._exceptions import ConfigError
from chaperone.cli._context import EXIT_CONFIG, EXIT_FAILED, load_or_exit, report_config_error
from chaperone.cli._health_judge import HealthJudge
from chaperone.cli._output import echo, error

if TYPE_CHECKING:
    from chaperone.metrics._server import HealthServer

__all__ = ["exposure_warning", "serve"]


class _StopError(Exception):
    """Raised in the main thread by SIGTERM or SIGINT, to leave ``serve_forever``."""


def _stop(_signum: int, _frame: types.FrameType | None) -> None:
    raise _StopError


def exposure_warning(address: str, *, token: str | None) -> str | None:
    """The warning for listening on ``address`` (an IP), or None for a loopback one."""
    try:
        if ipaddress.ip_address(address).is_loopback:
            return None
    except ValueError:
        pass
    return f"warning: {address} is reachable from other machines" + (
        "" if token else "; set CHAPERONE_SERVE_TOKEN to require a token"
    )


@click.command("serve")
@click.option(
    "--host",
    default=None,
    help="Address to listen on [default: CHAPERONE_SERVE_HOST, 127.0.0.1]. Anything but "
    "loopback is reachable from other machines: set CHAPERONE_SERVE_TOKEN.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Port to listen on, 0 for any free one [default: CHAPERONE_SERVE_PORT, 9464].",
)
def serve(host: str | None, port: int | None) -> None:
    """Serve health and the delivery metrics over HTTP: GET /health (the JSON of
    `chaperone health --json`; 200 while every check passes, 503 when one fails) and GET
    /metrics (Prometheus text format). With CHAPERONE_SERVE_TOKEN set, every request needs
    "Authorization: Bearer <token>". Stops on SIGTERM or Ctrl-C.
    """
    from chaperone.metrics._server import HealthServer  # prometheus_client: only here

    settings = load_or_exit()
    options = settings.health
    host = options.host if host is None else host
    port = options.port if port is None else port
    judge = HealthJudge(settings, SystemClock())
    try:
        problem = judge.open()
    except ConfigError as exc:
        report_config_error(exc)
        raise SystemExit(EXIT_CONFIG) from None
    if problem is not None:
        error(f"warning: {problem}; /health answers 503 until it opens")
    try:
        server = HealthServer(judge.report, host=host, port=port, token=options.token)
    except OSError as exc:
        judge.close()
        error(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
        raise SystemExit(EXIT_FAILED) from None
    try:
        _serve(server)
    finally:
        judge.close()
    echo("stopped")


def _serve(server: HealthServer) -> None:
    """Serve until SIGTERM or SIGINT, then close the server."""
    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        echo(f"listening on {server.url} (GET /health, GET /metrics)")
        warning = exposure_warning(server.server_name, token=server.token)
        if warning:
            error(warning)
        server.serve_forever(poll_interval=0.5)
    except _StopError:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.server_close()
