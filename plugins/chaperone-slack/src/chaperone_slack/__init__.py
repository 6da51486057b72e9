"""Chaperone channel ``slack``: post alerts to a Slack incoming webhook.

Install ``chaperone-slack``, set ``CHAPERONE_SLACK_WEBHOOK_URL`` (or ``webhook_url`` in
``[channels.slack]`` of ``chaperone.toml``) and name ``slack`` in
``CHAPERONE_ALERT_CHANNELS``. Each alert becomes one message in the seed's format: the
emoji and the alert's headline, then an attachment with the job class or service as its
title, red for errors, orange for warnings, green for resolutions, the fields, the footer
``Chaperone Job Supervision`` and the time of the alert.
"""

from __future__ import annotations

from chaperone.channels import RegisterChannel, hookimpl
from chaperone_slack._channel import SlackChannel
from chaperone_slack._render import render

__all__ = ["SlackChannel", "chaperone_register_channels", "render"]


@hookimpl
def chaperone_register_channels(register: RegisterChannel) -> None:
    """Register the ``slack`` channel."""
    register(SlackChannel)
