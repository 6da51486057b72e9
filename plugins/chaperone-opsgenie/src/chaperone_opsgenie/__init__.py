"""Chaperone's ``opsgenie`` channel: each firing alert opens (or counts on) an Opsgenie
alert whose alias is the incident's identity, and the incident's resolution closes it; an
acknowledgement in Chaperone acknowledges it (and its undoing unacknowledges it).

Install ``chaperone-opsgenie``, set ``CHAPERONE_OPSGENIE_API_KEY`` and add ``opsgenie``
to ``CHAPERONE_ALERT_CHANNELS``. See :mod:`chaperone_opsgenie._channel` for every setting
and :mod:`chaperone_opsgenie._render` for what the alerts look like.
"""

from __future__ import annotations

from chaperone.channels import RegisterChannel, hookimpl
from chaperone_opsgenie._channel import DEFAULT_REGION, REGIONS, OpsgenieChannel
from chaperone_opsgenie._render import (
    acknowledge_payload,
    alias_for,
    close_payload,
    create_payload,
    priority_for,
)

__all__ = [
    "DEFAULT_REGION",
    "REGIONS",
    "OpsgenieChannel",
    "acknowledge_payload",
    "alias_for",
    "chaperone_register_channels",
    "close_payload",
    "create_payload",
    "priority_for",
]


@hookimpl
def chaperone_register_channels(register: RegisterChannel) -> None:
    """Register the ``opsgenie`` channel."""
    register(OpsgenieChannel)
