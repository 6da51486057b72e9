"""Channels: the contract every channel implements, and the built-in ``log`` and
``database`` channels (each a plugin module of its own).

A channel plugin needs this one import: the contract (:class:`Channel`,
:class:`ChannelSettings`, :class:`SendContext`, :class:`Outcome`), the alert it renders,
the errors its settings raise, the hook marker and the ``register`` callback's type, the
HTTP helpers of :mod:`chaperone.channels.http` and the text helpers,
:mod:`chaperone.channels.text`::

    from chaperone.channels import Alert, Channel, ChannelSettings, Outcome, hookimpl, text
"""

from chaperone._alerts import Alert, AlertStatus, Priority, Severity
from chaperone._exceptions import ConfigError, ConfigProblem
from chaperone._markers import hookimpl
from chaperone._secrets import Secret
from chaperone._verdicts import Outcome, OutcomeKind
from chaperone.channels import text
from chaperone.channels._base import Channel, ChannelSettings, SendContext
from chaperone.channels._configure import channel_settings, env_prefix
from chaperone.channels.http import classify_response, post_json, retry_after_seconds
from chaperone.hookspecs import RegisterChannel

__all__ = [
    "Alert",
    "AlertStatus",
    "Channel",
    "ChannelSettings",
    "ConfigError",
    "ConfigProblem",
    "Outcome",
    "OutcomeKind",
    "Priority",
    "RegisterChannel",
    "Secret",
    "SendContext",
    "Severity",
    "channel_settings",
    "classify_response",
    "env_prefix",
    "hookimpl",
    "post_json",
    "retry_after_seconds",
    "text",
]
