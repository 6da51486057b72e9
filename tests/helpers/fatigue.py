r"""Shared by the alert-fatigue tests (tests/fatigue, tests/config): a recording channel,
runtimes built on it, SQLite stores, the keys a digest lists, and the issue's example
configuration.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Self

import chaperone
from chaperone import (
    Alert,
    AlertStatus,
    Channel,
    ChannelSettings,
    Chaperone,
    ManualClock,
    Outcome,
    PluginHost,
    Priority,
    SendContext,
    Settings,
)
from chaperone.config import GroupingSettings
from chaperone.store import MemoryStore, SQLiteStore, Store

__all__ = [
    "ISSUE_EXAMPLE_CONFIG",
    "ISSUE_SLACK_WEBHOOK",
    "SEED_DELAYS",
    "RecordingChannel",
    "entry_keys",
    "recording_runtime",
    "runtime_with",
    "sqlite_store",
    "trouble",
]

SEED_DELAYS = (
    timedelta(0),
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(minutes=30),
    timedelta(hours=1),
)
"""The seed's escalating delays for a repeated alert, written out (not read from the code)."""

ISSUE_SLACK_WEBHOOK = "https://hooks.slack.com/services/T0/B0/XXXXXXXXXXXXXXXXXXXXXXXX"
"""The Slack URL of the issue's example route. It ends in a realistic token: the issue's
``.../critical`` would make the masker treat the word "critical" as a secret piece of the
URL once the Slack plugin builds the channel, and mask the route's name with it."""

ISSUE_EXAMPLE_CONFIG = rf"""
[alerting.rate_limit]            # fixed windows, seconds or "10m"
job_stuck = "10m"
[alerting.escalation]            # per type: escalating delays instead of a fixed window
job_stuck = ["0s", "5m", "15m", "30m", "1h"]
[alerting.grouping]
window = "10m"
after = 5
by = ["type", "job_class"]
[alerting.priority]
critical_jobs = ["App\\Jobs\\ChargeCustomer"]
high = ["*Payment*", "*Order*"]
low = ["*Cleanup*", "*Archive*"]
[[alerting.routes]]
name = "critical"
match = {{ priority = ["critical", "high"] }}
channels = ["pagerduty", "slack"]
slack = {{ webhook_url = "{ISSUE_SLACK_WEBHOOK}" }}
runbook_url = "https://docs.example.com/runbooks/critical"
[[alerting.maintenance]]
every = ["sat", "sun"]
from = "02:00"
to = "04:00"
timezone = "Europe/Berlin"
match = {{ job_class = "App\\Jobs\\Backup*" }}
"""
"""The issue's §7 example ``chaperone.toml``, every alert-fatigue section of it."""

ENTRY_KEY = re.compile(r"^\(key (?P<key>[^()]*)\)")
"""How a digest entry starts: the listed alert's key in brackets."""


def trouble(
    alert_type: str,
    key: str,
    now: datetime,
    *,
    resolved: bool = False,
    priority: Priority = Priority.NORMAL,
) -> Alert:
    """An alert of ``alert_type`` and ``key`` raised at ``now``, firing unless ``resolved``."""
    return Alert(
        type=alert_type,
        key=key,
        headline="Trouble",
        title=f"Trouble: {key}",
        summary="Something went wrong.",
        status=AlertStatus.RESOLVED if resolved else AlertStatus.FIRING,
        priority=priority,
        occurred_at=now,
    )


def entry_keys(fields: Sequence[Sequence[str]]) -> list[str]:
    """The keys of the alerts a digest lists, one per field, from its fields (an Alert's
    pairs, or the lists of its JSON form).
    """
    keys = []
    for _time, entry in fields:
        found = ENTRY_KEY.search(entry)
        assert found, f"a digest entry without a key: {entry!r}"
        keys.append(found["key"])
    return keys


class RecordingChannel:
    """A plugin registering one channel, ``name``, that keeps every alert it is sent, in
    order (safely when several threads' runtimes share it), and always delivers.
    """

    def __init__(self, name: str = "recording") -> None:
        channel_name = self.name = name
        self.sent: list[Alert] = []
        self._lock = threading.Lock()
        recorder = self

        class Recording(Channel):
            name = channel_name

            @classmethod
            def from_settings(cls, settings: ChannelSettings) -> Self:
                return cls()

            async def send(self, alert: Alert, context: SendContext) -> Outcome:
                with recorder._lock:
                    recorder.sent.append(alert)
                return Outcome.delivered()

        self.channel_class: type[Channel] = Recording

    @chaperone.hookimpl
    def chaperone_register_channels(self, register: Callable[[type[Channel]], None]) -> None:
        register(self.channel_class)

    @property
    def individual(self) -> list[str]:
        """Keys of the ordinary alerts delivered (not digests), in order."""
        return [alert.key for alert in self.sent if not alert.is_digest]

    @property
    def digests(self) -> list[Alert]:
        """The digest alerts delivered, in order."""
        return [alert for alert in self.sent if alert.is_digest]

    @property
    def digested(self) -> list[str]:
        """Keys listed by every digest delivered, in order."""
        return [key for digest in self.digests for key in entry_keys(digest.fields)]


def sqlite_store(path: Path, clock: ManualClock) -> SQLiteStore:
    """A SQLite store on the file ``path``, judging time by ``clock``."""
    return SQLiteStore(path, clock, f"sqlite:///{path}")


def runtime_with(
    settings: Settings, clock: ManualClock, *plugins: object, store: Store | None = None
) -> Chaperone:
    """A runtime on ``store`` (a fresh memory store when None) with the built-in plugins
    and ``plugins``, no installed ones.
    """
    return Chaperone(
        settings,
        clock=clock,
        store=MemoryStore(clock) if store is None else store,
        plugins=PluginHost(
            entry_points=False,
            extra=[(f"plugin-{index}", plugin) for index, plugin in enumerate(plugins)],
        ),
    )


def recording_runtime(
    store: Store, clock: ManualClock, recorder: RecordingChannel | None = None, **overrides: Any
) -> Chaperone:
    """A runtime on ``store`` with the built-in plugins and ``recorder``'s channel (a new
    recorder's when None) as the only channel; ``overrides`` are settings. Grouping is off
    unless they say otherwise, so no verdict is grouping's.
    """
    recorder = recorder or RecordingChannel()
    overrides.setdefault("grouping", GroupingSettings(enabled=False))
    return runtime_with(
        Settings(channels=(recorder.name,), **overrides), clock, recorder, store=store
    )
