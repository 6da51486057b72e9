"""``chaperone config check`` and ``chaperone config show``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import click

from chaperone._alerts import Priority
from chaperone._chaperone import Chaperone
from chaperone._clock import SystemClock
from chaperone._durations import format_duration
from chaperone._exceptions import ConfigError
from chaperone._logging import configure_logging
from chaperone._plugins import PluginHost
from chaperone._secrets import MASK
from chaperone.channels import channel_settings
from chaperone.cli._context import EXIT_CONFIG, load_or_exit, report_config_error
from chaperone.cli._output import echo, print_json, print_table
from chaperone.config import SETTING_SPECS, Settings, collect_settings, read_plugin_settings
from chaperone.store import MemoryStore, default_store_url

__all__ = ["config"]


@click.group("config")
def config() -> None:
    """Check and show the configuration."""


@config.command("check")
def check() -> None:
    """Validate every setting and every configured channel; exit 2 listing every problem."""
    settings, problems = collect_settings(default_store_url=default_store_url())
    configure_logging(settings)
    # With bad core settings, the channels are still checked (on the settings that did
    # parse), without opening a store the configuration may not even name right.
    store = MemoryStore(SystemClock()) if problems else None
    try:
        Chaperone(settings, store=store).close()
    except ConfigError as exc:
        # A channel's complaint about a setting already reported (the mail channel
        # finding no recipients when CHAPERONE_ALERT_RECIPIENTS did not parse) is only
        # its consequence.
        reported = {problem.key for problem in problems}
        problems = (*problems, *(p for p in exc.problems if p.key not in reported))
    if problems:
        report_config_error(ConfigError(list(dict.fromkeys(problems))))
        raise SystemExit(EXIT_CONFIG)
    echo(f"configuration OK (file: {settings.config_file or 'none'})")
    echo(f"channels: {', '.join(settings.channels) or 'none'}")
    echo(f"store: {settings.store_url}")


def _value(value: Any) -> Any:
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, tuple):
        return ", ".join(str(item) for item in value)
    return value


def _rows(settings: Settings) -> list[dict[str, Any]]:
    """One row per setting: dotted name, environment variable, value, source."""
    values: dict[str, Any] = {
        "alerting.enabled": settings.enabled,
        "alerting.channels": settings.channels,
        "alerting.recipients": settings.recipients,
        "alerting.thresholds.error_rate": settings.thresholds.error_rate,
        "alerting.thresholds.response_time": settings.thresholds.response_time.total_seconds(),
        "alerting.thresholds.queue_length": settings.thresholds.queue_length,
        "alerting.thresholds.window": settings.thresholds.window.total_seconds(),
        "alerting.thresholds.min_jobs": settings.thresholds.min_jobs,
        "alerting.rate_limit.default": settings.rate_limit.default.total_seconds(),
        "alerting.grouping.enabled": settings.grouping.enabled,
        "alerting.grouping.window": settings.grouping.window.total_seconds(),
        "alerting.grouping.after": settings.grouping.after,
        "alerting.grouping.by": settings.grouping.by,
        "alerting.grouping.flush_at": settings.grouping.flush_at,
        "alerting.grouping.digest_size": settings.grouping.digest_size,
        "alerting.priority.critical_jobs": settings.priority.critical_jobs,
        **{
            f"alerting.priority.{level.value}": settings.priority.patterns.get(level, ())
            for level in Priority
        },
        "alerting.priority.low_digest_only": settings.priority.low_digest_only,
        "alerting.maintenance_summary": settings.maintenance_summary,
        "alerting.history_limit": settings.history_limit,
        "delivery.timeout": settings.delivery.timeout.total_seconds(),
        "delivery.max_attempts": settings.delivery.max_attempts,
        "delivery.max_backoff": settings.delivery.max_backoff.total_seconds(),
        "delivery.max_total": settings.delivery.max_total.total_seconds(),
        "delivery.exit_grace": settings.delivery.exit_grace.total_seconds(),
        "health.failure_threshold": settings.health.failure_threshold,
        "health.window": settings.health.window.total_seconds(),
        "health.require_monitor": settings.health.require_monitor,
        "health.outbox_max_age": settings.health.outbox_max_age.total_seconds(),
        "serve.host": settings.health.host,
        "serve.port": settings.health.port,
        "serve.token": MASK if settings.health.token else None,
        "serve.prefix": settings.serve.prefix,
        "serve.request_timeout": settings.serve.request_timeout,
        "serve.idle_timeout": settings.serve.idle_timeout,
        "serve.max_connections": settings.serve.max_connections,
        "serve.max_request_head": settings.serve.max_request_head,
        "serve.trusted_header": settings.serve.trusted_header,
        "serve.trusted_proxies": tuple(str(net) for net in settings.serve.trusted_proxies),
        "serve.proxy_role": str(settings.serve.proxy_role),
        "serve.session_secret": MASK if settings.serve.session_secret else None,
        "serve.ping_key": MASK if settings.serve.ping_key else None,
        "serve.secure_cookies": settings.serve.secure_cookies,
        "store.url": settings.store_url,
        "store.probe_interval": settings.store_probe_interval.total_seconds(),
        "supervision.abandoned_after": settings.abandoned_after.total_seconds(),
        "supervision.capture_output": settings.capture_output,
        "app_url": settings.app_url,
        "log.format": settings.log_format,
        "log.level": settings.log_level,
        "plugins.disable": settings.disabled_plugins,
    }
    rows = [
        {
            "setting": spec.name,
            "env": spec.env,
            "value": _value(values[spec.name]),
            "source": settings.source_of(spec.name),
        }
        for spec in SETTING_SPECS
    ]
    per_type: list[tuple[str, str, dict[str, Any]]] = [
        (
            "rate_limit",
            "RATE_LIMIT",
            {name: window.total_seconds() for name, window in settings.rate_limit.per_type.items()},
        ),
        (
            "escalation",
            "ESCALATION",
            {
                name: ", ".join(format_duration(delay) for delay in delays)
                for name, delays in settings.escalation.per_type.items()
            },
        ),
        ("runbooks", "RUNBOOK", dict(settings.runbooks)),
    ]
    for section, env, values_by_type in per_type:
        for alert_type, value in sorted(values_by_type.items()):
            name = f"alerting.{section}.{alert_type}"
            rows.append(
                {
                    "setting": name,
                    "env": f"CHAPERONE_ALERT_{env}_{alert_type.upper()}",
                    "value": value,
                    "source": settings.source_of(name),
                }
            )
    source = settings.config_file or "default"
    rows.extend(
        {
            "setting": f"alerting.routes[{index}]",
            "env": "",
            "value": f"{route.name}: {route.match.describe()} → {', '.join(route.channels)}"
            + (" (continue)" if route.continue_matching else ""),
            "source": source,
        }
        for index, route in enumerate(settings.routes)
    )
    rows.extend(
        {
            "setting": f"alerting.maintenance[{index}]",
            "env": "",
            "value": f"{window.name}: {window.start:%H:%M} to {window.end:%H:%M} "
            f"{window.timezone.key}, matching {window.match.describe()}",
            "source": source,
        }
        for index, window in enumerate(settings.maintenance)
    )
    rows.extend(
        {
            "setting": f"schedules[{index}]",
            "env": "",
            "value": f"{schedule.job}: {schedule.describe()}"
            + (f" {schedule.timezone.key}" if schedule.cron else "")
            + f", grace {format_duration(schedule.grace)}",
            "source": source,
        }
        for index, schedule in enumerate(settings.schedules)
    )
    host = PluginHost(disabled=settings.disabled_plugins)
    rows.extend(_channel_rows(settings, host))
    rows.extend(_plugin_rows(settings, host))
    return rows


def _plugin_rows(settings: Settings, host: PluginHost) -> list[dict[str, Any]]:
    """Each plugin's own settings (``[plugins.<name>]``), secrets masked."""
    _instances, read, _problems = read_plugin_settings(settings, host.settings_classes)
    return [
        {
            "setting": row.name,
            "env": row.env,
            "value": MASK if row.secret and row.value is not None else _value(row.value),
            "source": row.source,
        }
        for row in read
    ]


def _channel_rows(settings: Settings, host: PluginHost) -> list[dict[str, Any]]:
    """The settings each configured channel will see, secrets masked."""
    clock = SystemClock()
    rows = []
    for name in settings.channels:
        channel_class = host.channel_classes.get(name)
        if channel_class is None:
            continue
        merged = channel_settings(
            channel_class, app=settings, store=MemoryStore(clock), clock=clock
        )
        for key, value in sorted(merged.values.items()):
            setting, source = merged.origins[key]
            rows.append(
                {
                    "setting": f"channels.{name}.{key}",
                    "env": setting,
                    "value": MASK if key in channel_class.secret_keys else value,
                    "source": source,
                }
            )
    return rows


@config.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def show(as_json: bool) -> None:
    """Show every setting, its value and where it came from; secrets masked."""
    rows = _rows(load_or_exit())
    if as_json:
        print_json(rows)
        return
    print_table(
        "Configuration",
        ["setting", "environment variable", "value", "source"],
        [[row["setting"], row["env"], row["value"], row["source"]] for row in rows],
    )
