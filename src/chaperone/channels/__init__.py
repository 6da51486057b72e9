"""Channels: the contract every channel implements, and the built-in ``log`` and
``database`` channels (each a plugin module of its own).
"""

from chaperone.channels._base import Channel, ChannelSettings, SendContext
from chaperone.channels._configure import channel_settings, env_prefix

__all__ = ["Channel", "ChannelSettings", "SendContext", "channel_settings", "env_prefix"]
