"""Deployment watch: slow and failed deployments become alerts.

Every extension point of a plugin that is not a channel, in one module:

- **settings** (``chaperone_register_settings``): :class:`DeploySettings`, from
  ``[plugins.deploys]`` and ``CHAPERONE_DEPLOYS_*``;
- **events** (``chaperone_register_events``): :class:`DeploymentFailed`, queued by the
  process that deploys, and :class:`DeploymentSlow`, found by the detector; both become
  alerts through ``chaperone_alerts``;
- **a detector** (``chaperone_detect``): deployments running longer than
  ``slow_after``;
- **a filter** (``chaperone_filter_alert``): the alerts of ``quiet`` services are
  suppressed;
- **commands** (``chaperone_register_commands``): ``chaperone deploys start|finish|fail``;
- **a store** (entry point ``chaperone.stores``): ``scratch://NAME``, a SQLite file in
  the temporary directory.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import click

import chaperone
from chaperone.cli import runtime_or_exit
from chaperone.hookspecs import RegisterEvent, RegisterSettings
from chaperone.store import SQLiteStore, Store
from chaperone.supervision import default_supervisor

__all__ = [
    "DeploySettings",
    "DeploymentFailed",
    "DeploymentSlow",
    "chaperone_alerts",
    "chaperone_detect",
    "chaperone_filter_alert",
    "chaperone_register_commands",
    "chaperone_register_events",
    "chaperone_register_settings",
    "open_scratch",
    "start_deployment",
]

NAME = "deploys"
"""The plugin's name: its entry point, its table ``[plugins.deploys]``."""
RUNNING = "deploys:running:"
"""Store key prefix of the deployments under way, one key per service."""


@attrs.frozen(kw_only=True)
class DeploySettings:
    """``[plugins.deploys]``: when a deployment is slow, and whose alerts are quiet."""

    slow_after: timedelta = timedelta(minutes=10)
    quiet: tuple[str, ...] = ()
    """Services whose deployment alerts nobody needs (a staging copy, say)."""
    webhook_token: str | None = attrs.field(default=None, metadata={"secret": True})
    """Masked in ``chaperone config show``, in logs and in errors."""


@attrs.frozen(kw_only=True)
class DeploymentSlow(chaperone.Event):
    """A deployment has run longer than ``slow_after``."""

    service: str
    version: str
    running_for: timedelta


@attrs.frozen(kw_only=True)
class DeploymentFailed(chaperone.Event):
    """A deployment failed; queued by the process that ran it."""

    service: str
    version: str
    reason: str


@chaperone.hookimpl
def chaperone_register_settings(register: RegisterSettings) -> None:
    """Declare :class:`DeploySettings`."""
    register(DeploySettings)


@chaperone.hookimpl
def chaperone_register_events(register: RegisterEvent) -> None:
    """Let every process decode the plugin's events."""
    register(DeploymentSlow)
    register(DeploymentFailed)


def start_deployment(store: Store, service: str, version: str, at: datetime) -> None:
    """Record that ``service`` started deploying ``version``."""
    store.set(f"{RUNNING}{service}", json.dumps({"version": version, "at": at.isoformat()}))


@chaperone.hookimpl
def chaperone_detect(runtime: chaperone.Runtime, now: datetime) -> list[chaperone.Event]:
    """Deployments under way for longer than ``slow_after``, each reported once."""
    settings: DeploySettings = runtime.settings.plugin(NAME)
    found: list[chaperone.Event] = []
    for key in runtime.store.keys(RUNNING):
        text = runtime.store.get(key)
        if text is None:
            continue  # finished meanwhile
        running = json.loads(text)
        started = datetime.fromisoformat(running["at"])
        claim = f"deploys:slow:{key}:{running['version']}"
        if now - started > settings.slow_after and runtime.store.set_if_absent(claim, "1", 86400):
            service = key.removeprefix(RUNNING)
            found.append(
                DeploymentSlow(
                    service=service, version=running["version"], running_for=now - started
                )
            )
    return found


@chaperone.hookimpl
def chaperone_alerts(event: chaperone.Event, runtime: chaperone.Runtime) -> Sequence[Any] | None:
    """The alerts for the plugin's events; None for any other event."""
    if isinstance(event, DeploymentSlow):
        took = chaperone.format_duration(event.running_for)
        headline, summary = "Deployment Slow", f"The deployment has run for {took}."
        severity = chaperone.Severity.WARNING
    elif isinstance(event, DeploymentFailed):
        headline, summary = "Deployment Failed", f"The deployment failed: {event.reason}"
        severity = chaperone.Severity.ERROR
    else:
        return None
    if event.occurred_at is None:
        raise ValueError("the pipeline fills occurred_at before building alerts")
    return [
        chaperone.Alert(
            type=headline.lower().replace(" ", "_"),
            key=f"{event.service}:{event.version}",
            headline=headline,
            title=f"{headline}: {event.service} {event.version}",
            summary=summary,
            severity=severity,
            fields={"Service": event.service, "Version": event.version},
            service=event.service,
            occurred_at=event.occurred_at,
        )
    ]


@chaperone.hookimpl
def chaperone_filter_alert(
    alert: chaperone.Alert, runtime: chaperone.Runtime
) -> chaperone.Verdict | None:
    """Suppress the deployment alerts of the quiet services."""
    settings: DeploySettings = runtime.settings.plugin(NAME)
    if alert.type.startswith("deployment_") and alert.service in settings.quiet:
        return chaperone.Verdict.suppress(f"{alert.service} is quiet")
    return None


@chaperone.hookimpl
def chaperone_register_commands(cli: click.Group) -> None:
    """``chaperone deploys start|finish|fail``."""
    cli.add_command(deploys)


@click.group(NAME)
def deploys() -> None:
    """Record deployments for Chaperone to watch."""


@deploys.command("start")
@click.argument("service")
@click.argument("version")
def start(service: str, version: str) -> None:
    """SERVICE starts deploying VERSION."""
    with runtime_or_exit() as runtime:
        start_deployment(runtime.store, service, version, runtime.clock.now())
    click.echo(f"watching the deployment of {service} {version}")


@deploys.command("finish")
@click.argument("service")
def finish(service: str) -> None:
    """SERVICE finished deploying."""
    with runtime_or_exit() as runtime:
        runtime.store.delete(f"{RUNNING}{service}")
    click.echo(f"{service} deployed")


@deploys.command("fail")
@click.argument("service")
@click.argument("version")
@click.argument("reason")
def fail(service: str, version: str, reason: str) -> None:
    """SERVICE failed to deploy VERSION, because of REASON: queued for the monitor."""
    supervisor = default_supervisor()
    supervisor.emit(DeploymentFailed(service=service, version=version, reason=reason))
    supervisor.store.delete(f"{RUNNING}{service}")
    click.echo(f"reported the failed deployment of {service} {version}")


_SCRATCH_NAME = re.compile(r"[A-Za-z0-9_-]+")


def open_scratch(url: str, clock: chaperone.Clock, **options: Any) -> Store:
    """Open ``scratch://NAME``: a SQLite store in the temporary directory.

    >>> store = open_scratch("scratch://doctest", chaperone.ManualClock())
    >>> store.url
    'scratch://doctest'
    >>> store.close()
    """
    name = url.partition("://")[2]
    if not _SCRATCH_NAME.fullmatch(name):
        raise chaperone.ConfigError.single(
            options.get("key", "CHAPERONE_STORE"),
            options.get("source", "default"),
            "scratch:// takes a name of letters, digits, '-' and '_'",
        )
    path = Path(tempfile.gettempdir()) / f"chaperone-scratch-{name}.sqlite3"
    return SQLiteStore(path, clock, url, busy_timeout=options.get("busy_timeout", 5.0))
