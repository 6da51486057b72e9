"""Test helpers for Chaperone plugins: the channel contract suite and hypothesis strategies.

A channel plugin is tested the way the built-in channels are::

    from chaperone.testing import ChannelContract, MockService, ServiceMode
    from chaperone_slack import SlackChannel

    class TestSlackChannel(ChannelContract):
        channel_class = SlackChannel
        plugin_name = "slack"

        def valid_settings(self):
            return {"webhook_url": "https://hooks.slack.com/services/T0/B0/XXXX"}

        def invalid_settings(self):
            return [({}, "webhook_url"), ({"webhook_url": "not a url"}, "webhook_url")]

        def secrets(self):
            return ["https://hooks.slack.com/services/T0/B0/XXXX"]

        def make_service(self, mode: ServiceMode) -> MockService:
            return MockService(mode)  # answer as Slack does when it differs

:mod:`chaperone.testing.strategies` draws alerts and events for property tests of
your own; :mod:`chaperone.testing.digests` makes a group's held alerts and the digests
the core sends for them (:func:`held_stuck_alerts`, :func:`sample_digests`), to check
that your channel shows every entry of a digest within its service's limits.

This package needs the ``test`` extra (``pip install chaperone-core[test]``: hypothesis
and pytest). ``import chaperone`` never imports it, so neither becomes a runtime
dependency.
"""

from chaperone.testing import digests, strategies
from chaperone.testing._contract import (
    ChannelContract,
    MockService,
    Responder,
    SendRun,
    ServiceMode,
    assert_registered,
    capture_all_logs,
    find_secrets,
    offline_client,
)
from chaperone.testing.digests import held_stuck_alerts, sample_digests

__all__ = [
    "ChannelContract",
    "MockService",
    "Responder",
    "SendRun",
    "ServiceMode",
    "assert_registered",
    "capture_all_logs",
    "digests",
    "find_secrets",
    "held_stuck_alerts",
    "offline_client",
    "sample_digests",
    "strategies",
]
