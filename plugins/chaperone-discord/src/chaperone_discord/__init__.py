"""Discord channel for Chaperone: each alert as an embed posted through a channel webhook.

Set ``CHAPERONE_DISCORD_WEBHOOK_URL`` (or ``webhook_url`` under ``[channels.discord]``)
and name ``discord`` among the alert channels. See the README for every setting.
"""

from __future__ import annotations

from chaperone.channels import RegisterChannel, hookimpl
from chaperone_discord._channel import DiscordChannel, discord_retry_after
from chaperone_discord._render import render

__all__ = ["DiscordChannel", "chaperone_register_channels", "discord_retry_after", "render"]


@hookimpl
def chaperone_register_channels(register: RegisterChannel) -> None:
    """Register the ``discord`` channel."""
    register(DiscordChannel)
