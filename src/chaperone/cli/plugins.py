"""``chaperone plugins``: what plugins were found, what channels they give, which broke."""

from __future__ import annotations

import click

from chaperone._exceptions import ConfigError
from chaperone._logging import configure_logging
from chaperone._plugins import PluginHost
from chaperone.cli import COMMANDS
from chaperone.cli._output import error, print_json, print_table
from chaperone.config import Settings, load_settings
from chaperone.config._unknown import disable_problems

__all__ = ["plugins"]


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def plugins(as_json: bool) -> None:
    """List built-in and installed plugins with the channels each registers."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        error(f"warning: configuration has errors ({exc}); listing with no plugin disabled")
        settings = Settings()
    # Before the host loads plugins: a broken one is logged, and on stderr, not in the JSON.
    configure_logging(settings)
    host = PluginHost(disabled=settings.disabled_plugins)
    for problem in disable_problems(settings, host):  # a name no plugin has, or refused
        error(f"warning: {problem}")
    host.commands(COMMANDS)  # a plugin whose commands are refused is listed broken
    if as_json:
        print_json([info.to_dict() for info in host.plugins])
        return
    print_table(
        "Plugins",
        ["name", "distribution", "version", "channels", "status"],
        [
            [
                info.name,
                info.distribution,
                info.version,
                ", ".join(info.channels),
                info.status if not info.error else f"broken: {info.error}",
            ]
            for info in host.plugins
        ],
    )
