"""The ``chaperone`` command line."""

from __future__ import annotations

import importlib.metadata

import click

from chaperone.cli.config import config
from chaperone.cli.heartbeat import heartbeat
from chaperone.cli.history import history
from chaperone.cli.jobs import jobs
from chaperone.cli.monitor import monitor
from chaperone.cli.plugins import plugins
from chaperone.cli.ratelimit import ratelimit
from chaperone.cli.run import run
from chaperone.cli.test_alerts import test_alerts

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(importlib.metadata.version("chaperone-core"), prog_name="chaperone")
def cli() -> None:
    """Chaperone: watch background jobs and alert people when one goes wrong.

    Configuration comes from the environment, a .env file, and chaperone.toml (or the file
    named by CHAPERONE_CONFIG, or [tool.chaperone] in pyproject.toml).
    """


for command in (test_alerts, plugins, history, ratelimit, config, run, heartbeat, monitor, jobs):
    cli.add_command(command)


def main() -> None:
    """Entry point of the ``chaperone`` console script."""
    cli(prog_name="chaperone")
