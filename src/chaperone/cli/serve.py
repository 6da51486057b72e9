"""``chaperone serve``: the web app (pages, ``/health``, ``/metrics``) under uvicorn until
stopped; ``chaperone serve hash-password`` makes a password hash for ``[[serve.users]]``.

A store that cannot be opened at start does not stop it: ``/health`` answers 503 naming
the reason, and each request tries to open the store again. Listening anywhere but on
loopback needs authentication configured (``serve.token``, ``[[serve.users]]`` or
``serve.trusted_header``).
"""

from __future__ import annotations

import ipaddress
import sys

import click

from chaperone._exceptions import ConfigError
from chaperone.cli._context import EXIT_CONFIG, EXIT_FAILED, load_or_exit, report_config_error
from chaperone.cli._output import echo, error
from chaperone.config import Settings

__all__ = ["exposure_problem", "serve"]


def exposure_problem(address: str, settings: Settings) -> str | None:
    """Why listening on ``address`` (an IP) is refused: any address but loopback needs
    authentication configured. None when it is allowed.
    """
    try:
        if ipaddress.ip_address(address).is_loopback:
            return None
    except ValueError:
        pass
    if settings.health.token or settings.serve.authentication_configured:
        return None
    return (
        f"{address} is reachable from other machines: set serve.token "
        "(CHAPERONE_SERVE_TOKEN), [[serve.users]] or serve.trusted_header first, or listen "
        "on 127.0.0.1 (serve.host)"
    )


@click.group("serve", invoke_without_command=True)
@click.option(
    "--host",
    default=None,
    help="Address to listen on [default: CHAPERONE_SERVE_HOST, 127.0.0.1]. Anything but "
    "loopback needs authentication configured (serve.token, [[serve.users]] or "
    "serve.trusted_header).",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Port to listen on, 0 for any free one [default: CHAPERONE_SERVE_PORT, 9464].",
)
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Serve the web app: its pages under CHAPERONE_SERVE_PREFIX (/chaperone), GET /health
    (the JSON of `chaperone health --json`; 200 while every check passes, 503 when one
    fails) and GET /metrics (Prometheus text format). With CHAPERONE_SERVE_TOKEN set,
    scripts send "Authorization: Bearer <token>". Stops on SIGTERM or Ctrl-C.
    """
    if ctx.invoked_subcommand is not None:
        return
    from chaperone.web import WebContext, create_app  # the web stack: only here
    from chaperone.web._server import WebServer, address_of, bind

    settings = load_or_exit()
    host = settings.health.host if host is None else host
    port = settings.health.port if port is None else port
    context = WebContext.build(settings)
    try:
        try:
            problem = context.judge.open()
        except ConfigError as exc:
            report_config_error(exc)
            raise SystemExit(EXIT_CONFIG) from None
        try:
            refusal = exposure_problem(address_of(host, port), settings)
            if refusal is not None:
                error(f"refused: {refusal}")
                raise SystemExit(EXIT_CONFIG)
            sock = bind(host, port)
        except OSError as exc:
            error(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
            raise SystemExit(EXIT_FAILED) from None
        if problem is not None:
            error(f"warning: {problem}; /health answers 503 until it opens")
        server = WebServer(create_app(context), sock, settings.serve)
        pages = f"{context.prefix}/"
        echo(f"listening on {server.url} (pages at {pages}, GET /health, GET /metrics)")
        server.run()
    finally:
        context.close()
    echo("stopped")


@serve.command("hash-password")
def hash_password() -> None:
    """Read a password (prompted twice on a terminal, else one line of standard input)
    and print its hash, for password_hash in a [[serve.users]] entry.
    """
    from chaperone.web._passwords import hash_password as make_hash

    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        error("no password given")
        raise SystemExit(EXIT_CONFIG)
    echo(make_hash(password))
