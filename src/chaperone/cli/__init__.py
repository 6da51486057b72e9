"""The ``chaperone`` command line.

Each command's module is imported only when that command runs, so ``chaperone heartbeat``
in a shell loop does not pay for the HTTP client and the delivery machinery. Plugins add
commands through the ``chaperone_register_commands`` hook; the plugins are loaded only
when the commands are listed (``chaperone --help``) or a command is not a built-in one.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from chaperone._chaperone import Chaperone

__all__ = ["COMMANDS", "cli", "main", "plugin_commands", "runtime_or_exit"]

COMMANDS: dict[str, str] = {
    "ack": "chaperone.cli.ack:ack",
    "config": "chaperone.cli.config:config",
    "health": "chaperone.cli.health:health",
    "heartbeat": "chaperone.cli.heartbeat:heartbeat",
    "history": "chaperone.cli.history:history",
    "incidents": "chaperone.cli.incidents:incidents",
    "jobs": "chaperone.cli.jobs:jobs",
    "maintenance": "chaperone.cli.maintenance:maintenance",
    "monitor": "chaperone.cli.monitor:monitor",
    "plugins": "chaperone.cli.plugins:plugins",
    "ratelimit": "chaperone.cli.ratelimit:ratelimit",
    "route": "chaperone.cli.route:route",
    "run": "chaperone.cli.run:run",
    "schedules": "chaperone.cli.schedules:schedules",
    "serve": "chaperone.cli.serve:serve",
    "test-alerts": "chaperone.cli.test_alerts:test_alerts",
}
"""Every command, and where it lives."""


@cache
def plugin_commands() -> dict[str, click.Command]:
    """The commands the installed plugins add (those not disabled by the configuration;
    a configuration with problems still names the disabled plugins it can read).
    """
    from chaperone._logging import configure_logging
    from chaperone._plugins import PluginHost
    from chaperone.config import collect_settings

    settings, _problems = collect_settings()
    configure_logging(settings)
    return PluginHost(disabled=settings.disabled_plugins).commands(COMMANDS)


@contextmanager
def runtime_or_exit() -> Iterator[Chaperone]:
    """For a plugin's command: the configured, validated Chaperone (closed after), with
    logging set up; a configuration problem is printed, one line each, and ends the
    command with exit status 2, as it does every built-in command.
    """
    from chaperone.cli._context import runtime_or_exit as validated

    with validated() as runtime:
        yield runtime


class _LazyGroup(click.Group):
    """A group that imports a command's module on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS, *plugin_commands()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name) or plugin_commands().get(cmd_name)
        module, _, attribute = target.partition(":")
        command = getattr(importlib.import_module(module), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target} is not a click command")
        return command


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(importlib.metadata.version("chaperone-core"), prog_name="chaperone")
def cli() -> None:
    """Chaperone: watch background jobs and alert people when one goes wrong.

    Configuration comes from the environment, a .env file, and chaperone.toml (or the file
    named by CHAPERONE_CONFIG, or [tool.chaperone] in pyproject.toml).
    """


def main() -> None:
    """Entry point of the ``chaperone`` console script.

    A store that cannot be reached (Redis down, a SQLite file on a full disk) ends the
    command with one line naming the operation, not a traceback; exit status 1.
    """
    from chaperone._exceptions import StoreError

    try:
        cli(prog_name="chaperone")
    except StoreError as exc:
        from chaperone.cli._output import error

        error(f"store error: {exc}")
        raise SystemExit(1) from None
