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
that your channel shows every entry of a digest within its service's limits
(:func:`assert_each_listed_once`). :mod:`chaperone.testing.servers` stands a recording
HTTP server on 127.0.0.1 in for your service.

:mod:`chaperone.testing.cli` runs the real ``chaperone`` command as a user does: in a
subprocess, in a clean environment (:func:`clean_environ`: no ``CHAPERONE_*`` variable of
the developer's shell), with a store of its own whose history :func:`stored_history`
reads. A plugin's ``conftest.py`` runs its property tests under Chaperone's hypothesis
profile::

    import pytest

    pytest.register_assert_rewrite("chaperone.testing")

    from chaperone.testing import load_hypothesis_profile  # noqa: E402

    load_hypothesis_profile()

This package needs the ``testing`` extra (``pip install chaperone-core[testing]``:
hypothesis and pytest, nothing more). ``import chaperone`` never imports it, so neither
becomes a runtime dependency.
"""

from chaperone.testing import cli, digests, servers, strategies
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
from chaperone.testing._profile import (
    HYPOTHESIS_PROFILE,
    hypothesis_profile,
    load_hypothesis_profile,
)
from chaperone.testing.cli import CliResult, clean_environ, run_cli, stored_history
from chaperone.testing.digests import assert_each_listed_once, held_stuck_alerts, sample_digests

__all__ = [
    "HYPOTHESIS_PROFILE",
    "ChannelContract",
    "CliResult",
    "MockService",
    "Responder",
    "SendRun",
    "ServiceMode",
    "assert_each_listed_once",
    "assert_registered",
    "capture_all_logs",
    "clean_environ",
    "cli",
    "digests",
    "find_secrets",
    "held_stuck_alerts",
    "hypothesis_profile",
    "load_hypothesis_profile",
    "offline_client",
    "run_cli",
    "sample_digests",
    "servers",
    "stored_history",
    "strategies",
]
