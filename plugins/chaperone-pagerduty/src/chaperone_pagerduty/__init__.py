"""Chaperone channel ``pagerduty``: each alert opens a PagerDuty incident through the
Events API v2 (a ``trigger`` event), and its resolution closes it (a ``resolve`` event
with the same ``dedup_key``).

Settings: ``CHAPERONE_PAGERDUTY_ROUTING_KEY`` (the integration key; required, secret) and
``CHAPERONE_PAGERDUTY_EVENTS_URL`` (default ``https://events.pagerduty.com/v2/enqueue``),
or ``routing_key`` and ``events_url`` under ``[channels.pagerduty]`` in ``chaperone.toml``.
"""

from __future__ import annotations

from chaperone.channels import RegisterChannel, hookimpl
from chaperone_pagerduty._channel import PagerDutyChannel
from chaperone_pagerduty._render import dedup_key, render_event

__all__ = ["PagerDutyChannel", "chaperone_register_channels", "dedup_key", "render_event"]


@hookimpl
def chaperone_register_channels(register: RegisterChannel) -> None:
    """Register the ``pagerduty`` channel."""
    register(PagerDutyChannel)
