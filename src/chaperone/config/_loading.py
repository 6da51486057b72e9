"""Build :class:`Settings` from defaults < TOML file < ``.env`` < environment.

Every value is trimmed and parsed once, here; every problem found is collected, and
one :class:`ConfigError` names them all, each with its key and where it came from.
An empty value counts as not set, so ``CHAPERONE_APP_URL=`` in a ``.env`` template
leaves the default in force.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs

from chaperone._alerts import Priority
from chaperone._exceptions import ConfigError, ConfigProblem
from chaperone._matching import parse_match
from chaperone._secrets import MASKER
from chaperone.config._fatigue import (
    parse_escalation,
    parse_globs,
    parse_recurring_windows,
    parse_routes,
)
from chaperone.config._files import dotenv_source, read_dotenv, read_toml
from chaperone.config._parsing import (
    parse_bool,
    parse_choice,
    parse_duration_setting,
    parse_emails,
    parse_http_url,
    parse_int,
    parse_names,
    parse_percent,
    parse_plugin_names,
    parse_text,
)
from chaperone.config._schedules import parse_schedules
from chaperone.config._serve import (
    parse_ping_keys,
    parse_prefix,
    parse_role,
    parse_trusted_proxies,
    parse_users,
)
from chaperone.config._settings import (
    MAX_DIGEST_SIZE,
    DeliverySettings,
    EscalationSettings,
    GroupingSettings,
    HealthSettings,
    PrioritySettings,
    RateLimitSettings,
    ServeSettings,
    Settings,
    Thresholds,
    UserEntry,
)

__all__ = ["SETTING_SPECS", "SettingSpec", "collect_settings", "load_settings"]

RATE_LIMIT_ENV_PREFIX = "CHAPERONE_ALERT_RATE_LIMIT_"
ESCALATION_ENV_PREFIX = "CHAPERONE_ALERT_ESCALATION_"
RUNBOOK_ENV_PREFIX = "CHAPERONE_ALERT_RUNBOOK_"


@attrs.frozen
class SettingSpec:
    """One setting: its dotted name, environment variable, place in TOML and parser."""

    name: str
    env: str
    toml: tuple[str, ...]
    parse: Callable[[Any], Any]


def _positive_int(value: Any) -> int:
    return parse_int(value, minimum=1)


def _group_by(value: Any) -> tuple[str, ...]:
    fields = parse_globs(value)
    try:
        parse_match({field: "*" for field in fields})
    except ValueError as exc:
        raise ValueError(str(exc)) from None
    if not fields:
        raise ValueError("expected at least one field, such as ['type', 'job_class']")
    return fields


def _digest_size(value: Any) -> int:
    size = parse_int(value, minimum=1)
    if size > MAX_DIGEST_SIZE:
        raise ValueError(
            f"expected at most {MAX_DIGEST_SIZE} (Slack shows no more fields in one message)"
        )
    return size


def _positive_seconds(value: Any) -> float:
    seconds = parse_duration_setting(value).total_seconds()
    if seconds <= 0:
        raise ValueError("expected a duration above zero")
    return seconds


def _request_head(value: Any) -> int:
    size = parse_int(value, minimum=1024)
    if size > 1024 * 1024:
        raise ValueError(f"expected at most 1048576 bytes, got {size}")
    return size


def _port(value: Any) -> int:
    port = parse_int(value, minimum=1)
    if port > 65535:
        raise ValueError(f"expected a TCP port from 1 to 65535, got {port}")
    return port


def _positive_duration(value: Any) -> timedelta:
    duration = parse_duration_setting(value)
    if duration <= timedelta(0):
        raise ValueError("expected a duration above 0")
    return duration


def _stats_window(value: Any) -> timedelta:
    window = parse_duration_setting(value)
    if not timedelta(minutes=1) <= window <= timedelta(days=1):
        raise ValueError("expected a window from 1m to 1d (job counts are kept per minute, a day)")
    return window


SETTING_SPECS: tuple[SettingSpec, ...] = (
    SettingSpec(
        "alerting.enabled", "CHAPERONE_ALERTING_ENABLED", ("alerting", "enabled"), parse_bool
    ),
    SettingSpec(
        "alerting.channels", "CHAPERONE_ALERT_CHANNELS", ("alerting", "channels"), parse_names
    ),
    SettingSpec(
        "alerting.recipients",
        "CHAPERONE_ALERT_RECIPIENTS",
        ("alerting", "recipients"),
        parse_emails,
    ),
    SettingSpec(
        "alerting.thresholds.error_rate",
        "CHAPERONE_ALERT_ERROR_RATE",
        ("alerting", "thresholds", "error_rate"),
        parse_percent,
    ),
    SettingSpec(
        "alerting.thresholds.response_time",
        "CHAPERONE_ALERT_RESPONSE_TIME",
        ("alerting", "thresholds", "response_time"),
        parse_duration_setting,
    ),
    SettingSpec(
        "alerting.thresholds.queue_length",
        "CHAPERONE_ALERT_QUEUE_LENGTH",
        ("alerting", "thresholds", "queue_length"),
        parse_int,
    ),
    SettingSpec(
        "alerting.thresholds.window",
        "CHAPERONE_ALERT_THRESHOLD_WINDOW",
        ("alerting", "thresholds", "window"),
        _stats_window,
    ),
    SettingSpec(
        "alerting.thresholds.min_jobs",
        "CHAPERONE_ALERT_THRESHOLD_MIN_JOBS",
        ("alerting", "thresholds", "min_jobs"),
        _positive_int,
    ),
    SettingSpec(
        "alerting.rate_limit.default",
        "CHAPERONE_ALERT_RATE_LIMIT",
        ("alerting", "rate_limit", "default"),
        parse_duration_setting,
    ),
    SettingSpec(
        "alerting.grouping.enabled",
        "CHAPERONE_ALERT_GROUPING",
        ("alerting", "grouping", "enabled"),
        parse_bool,
    ),
    SettingSpec(
        "alerting.grouping.window",
        "CHAPERONE_ALERT_GROUP_WINDOW",
        ("alerting", "grouping", "window"),
        _positive_duration,
    ),
    SettingSpec(
        "alerting.grouping.after",
        "CHAPERONE_ALERT_GROUP_AFTER",
        ("alerting", "grouping", "after"),
        _positive_int,
    ),
    SettingSpec(
        "alerting.grouping.by",
        "CHAPERONE_ALERT_GROUP_BY",
        ("alerting", "grouping", "by"),
        _group_by,
    ),
    SettingSpec(
        "alerting.grouping.flush_at",
        "CHAPERONE_ALERT_GROUP_FLUSH_AT",
        ("alerting", "grouping", "flush_at"),
        _positive_int,
    ),
    SettingSpec(
        "alerting.grouping.digest_size",
        "CHAPERONE_ALERT_GROUP_DIGEST_SIZE",
        ("alerting", "grouping", "digest_size"),
        _digest_size,
    ),
    SettingSpec(
        "alerting.priority.critical_jobs",
        "CHAPERONE_CRITICAL_JOBS",
        ("alerting", "priority", "critical_jobs"),
        parse_globs,
    ),
    *(
        SettingSpec(
            f"alerting.priority.{level.value}",
            f"CHAPERONE_ALERT_PRIORITY_{level.name}",
            ("alerting", "priority", level.value),
            parse_globs,
        )
        for level in Priority
    ),
    SettingSpec(
        "alerting.priority.low_digest_only",
        "CHAPERONE_ALERT_LOW_DIGEST_ONLY",
        ("alerting", "priority", "low_digest_only"),
        parse_bool,
    ),
    SettingSpec(
        "alerting.maintenance_summary",
        "CHAPERONE_MAINTENANCE_SUMMARY",
        ("alerting", "maintenance_summary"),
        parse_bool,
    ),
    SettingSpec(
        "alerting.history_limit",
        "CHAPERONE_HISTORY_LIMIT",
        ("alerting", "history_limit"),
        _positive_int,
    ),
    SettingSpec(
        "delivery.timeout",
        "CHAPERONE_DELIVERY_TIMEOUT",
        ("delivery", "timeout"),
        _positive_duration,
    ),
    SettingSpec(
        "delivery.max_attempts",
        "CHAPERONE_DELIVERY_MAX_ATTEMPTS",
        ("delivery", "max_attempts"),
        _positive_int,
    ),
    SettingSpec(
        "delivery.max_backoff",
        "CHAPERONE_DELIVERY_MAX_BACKOFF",
        ("delivery", "max_backoff"),
        parse_duration_setting,
    ),
    SettingSpec(
        "delivery.max_total",
        "CHAPERONE_DELIVERY_MAX_TOTAL",
        ("delivery", "max_total"),
        _positive_duration,
    ),
    SettingSpec(
        "delivery.exit_grace",
        "CHAPERONE_DELIVERY_EXIT_GRACE",
        ("delivery", "exit_grace"),
        parse_duration_setting,
    ),
    SettingSpec(
        "health.failure_threshold",
        "CHAPERONE_HEALTH_FAILURE_THRESHOLD",
        ("health", "failure_threshold"),
        parse_percent,
    ),
    SettingSpec("health.window", "CHAPERONE_HEALTH_WINDOW", ("health", "window"), _stats_window),
    SettingSpec(
        "health.require_monitor",
        "CHAPERONE_HEALTH_REQUIRE_MONITOR",
        ("health", "require_monitor"),
        parse_bool,
    ),
    SettingSpec(
        "health.outbox_max_age",
        "CHAPERONE_HEALTH_OUTBOX_MAX_AGE",
        ("health", "outbox_max_age"),
        _positive_duration,
    ),
    SettingSpec("serve.host", "CHAPERONE_SERVE_HOST", ("serve", "host"), parse_text),
    SettingSpec("serve.port", "CHAPERONE_SERVE_PORT", ("serve", "port"), _port),
    SettingSpec("serve.token", "CHAPERONE_SERVE_TOKEN", ("serve", "token"), parse_text),
    SettingSpec("serve.prefix", "CHAPERONE_SERVE_PREFIX", ("serve", "prefix"), parse_prefix),
    SettingSpec(
        "serve.request_timeout",
        "CHAPERONE_SERVE_REQUEST_TIMEOUT",
        ("serve", "request_timeout"),
        _positive_seconds,
    ),
    SettingSpec(
        "serve.idle_timeout",
        "CHAPERONE_SERVE_IDLE_TIMEOUT",
        ("serve", "idle_timeout"),
        _positive_seconds,
    ),
    SettingSpec(
        "serve.max_connections",
        "CHAPERONE_SERVE_MAX_CONNECTIONS",
        ("serve", "max_connections"),
        _positive_int,
    ),
    SettingSpec(
        "serve.max_request_head",
        "CHAPERONE_SERVE_MAX_REQUEST_HEAD",
        ("serve", "max_request_head"),
        _request_head,
    ),
    SettingSpec(
        "serve.trusted_header",
        "CHAPERONE_SERVE_TRUSTED_HEADER",
        ("serve", "trusted_header"),
        parse_text,
    ),
    SettingSpec(
        "serve.trusted_proxies",
        "CHAPERONE_SERVE_TRUSTED_PROXIES",
        ("serve", "trusted_proxies"),
        parse_trusted_proxies,
    ),
    SettingSpec(
        "serve.proxy_role", "CHAPERONE_SERVE_PROXY_ROLE", ("serve", "proxy_role"), parse_role
    ),
    SettingSpec(
        "serve.session_secret",
        "CHAPERONE_SERVE_SESSION_SECRET",
        ("serve", "session_secret"),
        parse_text,
    ),
    SettingSpec("serve.ping_key", "CHAPERONE_SERVE_PING_KEY", ("serve", "ping_key"), parse_text),
    SettingSpec(
        "serve.secure_cookies",
        "CHAPERONE_SERVE_SECURE_COOKIES",
        ("serve", "secure_cookies"),
        parse_bool,
    ),
    SettingSpec("store.url", "CHAPERONE_STORE", ("store", "url"), parse_text),
    SettingSpec(
        "supervision.abandoned_after",
        "CHAPERONE_ABANDONED_AFTER",
        ("supervision", "abandoned_after"),
        _positive_duration,
    ),
    SettingSpec(
        "supervision.capture_output",
        "CHAPERONE_CAPTURE_OUTPUT",
        ("supervision", "capture_output"),
        parse_bool,
    ),
    SettingSpec(
        "store.probe_interval",
        "CHAPERONE_STORE_PROBE_INTERVAL",
        ("store", "probe_interval"),
        _positive_duration,
    ),
    SettingSpec("app_url", "CHAPERONE_APP_URL", ("app_url",), parse_http_url),
    SettingSpec(
        "log.format",
        "CHAPERONE_LOG_FORMAT",
        ("log", "format"),
        parse_choice("auto", "console", "json"),
    ),
    SettingSpec(
        "log.level",
        "CHAPERONE_LOG_LEVEL",
        ("log", "level"),
        parse_choice("debug", "info", "warning", "error", "critical"),
    ),
    SettingSpec(
        "plugins.disable", "CHAPERONE_DISABLE_PLUGINS", ("plugins", "disable"), parse_plugin_names
    ),
)
"""Every scalar setting. Per-type tables (``[alerting.rate_limit]``,
``[alerting.escalation]``, ``[alerting.runbooks]``), ``[[alerting.routes]]``,
``[[alerting.maintenance]]``, ``[[schedules]]`` and ``[channels.*]`` are read besides
these."""

_FREE_TABLES = {
    ("alerting", "rate_limit"),
    ("alerting", "escalation"),
    ("alerting", "runbooks"),
    ("alerting", "routes"),
    ("alerting", "maintenance"),
    ("channels",),
    ("serve", "users"),
    ("serve", "ping_keys"),
    ("schedules",),
}
"""Tables whose keys are names the user picks (alert types, channel names), and the
arrays of tables read by their own parsers."""


@attrs.define
class _Layer:
    """One source of raw values: where it is, and what it says by dotted name."""

    values: dict[str, Any] = attrs.field(factory=dict)
    sources: dict[str, str] = attrs.field(factory=dict)


def load_settings(
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    *,
    default_store_url: str | None = None,
) -> Settings:
    """Read the configuration and return validated :class:`Settings`.

    ``environ`` defaults to ``os.environ`` and ``cwd`` (where ``.env``,
    ``chaperone.toml`` and ``pyproject.toml`` are looked for) to the working directory.
    Raises :class:`ConfigError` listing every problem found.
    """
    settings, problems = collect_settings(environ, cwd, default_store_url=default_store_url)
    if problems:
        raise ConfigError(problems)
    return settings


def collect_settings(
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    *,
    default_store_url: str | None = None,
) -> tuple[Settings, tuple[ConfigProblem, ...]]:
    """Read the configuration as :func:`load_settings` does, but return what is wrong
    instead of raising: the settings, each bad value left at its default, and every
    problem found (none when the configuration is valid). For a check that goes on to
    the channels whatever the core settings say.
    """
    cwd = cwd or Path.cwd()
    problems: list[ConfigProblem] = []
    merged, merged_sources = _environment(
        dict(os.environ if environ is None else environ), cwd, problems
    )
    config_file, table = _toml(merged, merged_sources, cwd, problems)
    toml_source = str(config_file) if config_file else "defaults"

    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for spec in SETTING_SPECS:
        # Every layer's value is checked, so a bad one in the file is found even while
        # the environment overrides it; the highest layer's is the setting.
        for layer, (raw, key, source) in enumerate(
            _layers_of(spec, merged, merged_sources, table, toml_source)
        ):
            try:
                value = spec.parse(raw)
            except ValueError as exc:
                problems.append(ConfigProblem(key=key, source=source, message=str(exc)))
                continue
            if layer == 0:
                values[spec.name] = value
                sources[spec.name] = source

    layers = _Layers(merged, merged_sources, table, toml_source, problems, sources)
    per_type = layers.per_type(
        "rate_limit", RATE_LIMIT_ENV_PREFIX, parse_duration_setting, "CHAPERONE_ALERT_RATE_LIMIT"
    )
    escalation = layers.per_type("escalation", ESCALATION_ENV_PREFIX, parse_escalation)
    runbooks = layers.per_type("runbooks", RUNBOOK_ENV_PREFIX, parse_http_url)
    routes = parse_routes(_lookup(table, ("alerting", "routes")), toml_source, problems)
    windows = parse_recurring_windows(
        _lookup(table, ("alerting", "maintenance")), toml_source, problems
    )
    schedules = parse_schedules(_lookup(table, ("schedules",)), toml_source, problems)
    channel_sections = _channel_sections(table, toml_source, problems)
    users = parse_users(_lookup(table, ("serve", "users")), toml_source, problems)
    ping_keys = parse_ping_keys(_lookup(table, ("serve", "ping_keys")), toml_source, problems)
    plugin_sections = _plugin_sections(table)
    problems.extend(_unknown_toml_keys(table, toml_source))

    defaults = Settings()
    settings = Settings(
        enabled=values.get("alerting.enabled", defaults.enabled),
        channels=values.get("alerting.channels", defaults.channels),
        recipients=values.get("alerting.recipients", defaults.recipients),
        thresholds=Thresholds(
            error_rate=values.get("alerting.thresholds.error_rate", Thresholds().error_rate),
            response_time=values.get(
                "alerting.thresholds.response_time", Thresholds().response_time
            ),
            queue_length=values.get("alerting.thresholds.queue_length", Thresholds().queue_length),
            window=values.get("alerting.thresholds.window", Thresholds().window),
            min_jobs=values.get("alerting.thresholds.min_jobs", Thresholds().min_jobs),
        ),
        rate_limit=RateLimitSettings(
            default=values.get("alerting.rate_limit.default", RateLimitSettings().default),
            per_type=per_type,
        ),
        escalation=EscalationSettings(
            per_type={name: delays for name, delays in escalation.items() if delays is not None}
        ),
        grouping=_grouping(values),
        priority=_priority(values),
        routes=routes,
        maintenance=windows,
        maintenance_summary=values.get("alerting.maintenance_summary", True),
        schedules=schedules,
        runbooks=runbooks,
        health=_health(values),
        serve=_serve(values, users, ping_keys),
        delivery=DeliverySettings(
            timeout=values.get("delivery.timeout", DeliverySettings().timeout),
            max_attempts=values.get("delivery.max_attempts", DeliverySettings().max_attempts),
            max_backoff=values.get("delivery.max_backoff", DeliverySettings().max_backoff),
            max_total=values.get("delivery.max_total", DeliverySettings().max_total),
            exit_grace=values.get("delivery.exit_grace", DeliverySettings().exit_grace),
        ),
        store_url=values.get("store.url", default_store_url or defaults.store_url),
        store_probe_interval=values.get("store.probe_interval", defaults.store_probe_interval),
        abandoned_after=values.get("supervision.abandoned_after", defaults.abandoned_after),
        capture_output=values.get("supervision.capture_output", defaults.capture_output),
        app_url=values.get("app_url"),
        log_format=values.get("log.format", defaults.log_format),
        log_level=values.get("log.level", defaults.log_level),
        disabled_plugins=values.get("plugins.disable", ()),
        history_limit=values.get("alerting.history_limit", defaults.history_limit),
        channel_sections=channel_sections,
        plugin_sections=plugin_sections,
        config_file=str(config_file) if config_file else None,
        environ=merged,
        environ_sources=merged_sources,
        sources=sources,
    )
    return settings, tuple(problems)


def _environment(
    environ: dict[str, str], cwd: Path, problems: list[ConfigProblem]
) -> tuple[dict[str, str], dict[str, str]]:
    """Merge ``.env`` under the real environment, remembering where each value came from."""
    merged: dict[str, str] = {}
    sources: dict[str, str] = {}
    dotenv_path = cwd / ".env"
    if dotenv_path.is_file():
        for name, value in read_dotenv(dotenv_path, problems).items():
            merged[name] = value
            sources[name] = dotenv_source(dotenv_path)
    for name, value in environ.items():
        if not value.strip() and merged.get(name, "").strip():
            continue  # an empty variable counts as not set: the .env value stands
        merged[name] = value
        sources[name] = "environment"
    return merged, sources


def _toml(
    merged: Mapping[str, str],
    merged_sources: Mapping[str, str],
    cwd: Path,
    problems: list[ConfigProblem],
) -> tuple[Path | None, dict[str, Any]]:
    """Find and read the TOML configuration, if there is one."""
    explicit = merged.get("CHAPERONE_CONFIG", "").strip()
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_absolute():
            path = cwd / path
        if not path.is_file():
            problems.append(
                ConfigProblem(
                    key="CHAPERONE_CONFIG",
                    source=merged_sources.get("CHAPERONE_CONFIG", "environment"),
                    message=f"no such file: {path}",
                )
            )
            return None, {}
        return path, read_toml(path, problems)
    own = cwd / "chaperone.toml"
    if own.is_file():
        return own, read_toml(own, problems)
    pyproject = cwd / "pyproject.toml"
    if pyproject.is_file():
        tool = read_toml(pyproject, problems).get("tool", {})
        section = tool.get("chaperone") if isinstance(tool, dict) else None
        if isinstance(section, dict):
            return pyproject, section
    return None, {}


def _lookup(table: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = table
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _layers_of(
    spec: SettingSpec,
    merged: Mapping[str, str],
    merged_sources: Mapping[str, str],
    table: Mapping[str, Any],
    toml_source: str,
) -> list[tuple[Any, str, str]]:
    """The raw values of ``spec`` (with key and source) of every layer that sets it,
    the highest first: the environment (``.env`` included), then the TOML file.
    """
    found = []
    raw = merged.get(spec.env)
    if not _is_empty(raw):
        found.append((raw, spec.env, merged_sources.get(spec.env, "environment")))
    raw = _lookup(table, spec.toml)
    if not _is_empty(raw):
        found.append((raw, ".".join(spec.toml), toml_source))
    return found


def _grouping(values: Mapping[str, Any]) -> GroupingSettings:
    defaults = GroupingSettings()
    return GroupingSettings(
        **{
            name: values.get(f"alerting.grouping.{name}", getattr(defaults, name))
            for name in ("enabled", "window", "after", "by", "flush_at", "digest_size")
        }
    )


def _health(values: Mapping[str, Any]) -> HealthSettings:
    defaults = HealthSettings()
    token = values.get("serve.token")
    if token:
        MASKER.add(token)
    return HealthSettings(
        failure_threshold=values.get("health.failure_threshold", defaults.failure_threshold),
        window=values.get("health.window", defaults.window),
        host=values.get("serve.host", defaults.host),
        port=values.get("serve.port", defaults.port),
        token=token,
        require_monitor=values.get("health.require_monitor", defaults.require_monitor),
        outbox_max_age=values.get("health.outbox_max_age", defaults.outbox_max_age),
    )


def _serve(
    values: Mapping[str, Any], users: tuple[UserEntry, ...], ping_keys: dict[str, str]
) -> ServeSettings:
    defaults = ServeSettings()
    for secret in ("serve.session_secret", "serve.ping_key"):
        if values.get(secret):
            MASKER.add(values[secret])
    return ServeSettings(
        **{
            name: values.get(f"serve.{name}", getattr(defaults, name))
            for name in (
                "prefix",
                "request_timeout",
                "idle_timeout",
                "max_connections",
                "max_request_head",
                "trusted_header",
                "trusted_proxies",
                "proxy_role",
                "session_secret",
                "ping_key",
                "secure_cookies",
            )
        },
        users=users,
        ping_keys=ping_keys,
    )


def _priority(values: Mapping[str, Any]) -> PrioritySettings:
    return PrioritySettings(
        critical_jobs=values.get("alerting.priority.critical_jobs", ()),
        patterns={
            level: values[f"alerting.priority.{level.value}"]
            for level in Priority
            if f"alerting.priority.{level.value}" in values
        },
        low_digest_only=values.get("alerting.priority.low_digest_only", False),
    )


@attrs.frozen
class _Layers:
    """The merged environment and the TOML table, for settings keyed by alert type."""

    merged: Mapping[str, str]
    merged_sources: Mapping[str, str]
    table: Mapping[str, Any]
    toml_source: str
    problems: list[ConfigProblem]
    sources: dict[str, str]

    def per_type(
        self,
        section_name: str,
        env_prefix: str,
        parse: Callable[[Any], Any],
        default_env: str | None = None,
    ) -> dict[str, Any]:
        """Read ``[alerting.<section_name>] <type> = value`` under
        ``<env_prefix><TYPE>=value`` (``CHAPERONE_ALERT_RATE_LIMIT_JOB_STUCK=600``).

        With ``default_env``, the key ``default`` belongs to a scalar setting and is
        skipped here. As for the scalar settings, a value the environment overrides is
        checked too.
        """
        setting = f"alerting.{section_name}"
        raw: dict[str, list[tuple[Any, str, str]]] = {}
        section = _lookup(self.table, ("alerting", section_name))
        if isinstance(section, Mapping):
            for alert_type, value in section.items():
                if not (default_env and alert_type == "default") and not _is_empty(value):
                    raw[alert_type] = [(value, f"{setting}.{alert_type}", self.toml_source)]
        elif section is not None:
            message = "expected a table of alert type = value"
            if default_env:
                message += f" (the default is {setting}.default)"
            self._problem(setting, self.toml_source, message)
        for name, value in self.merged.items():
            if name.startswith(env_prefix) and not _is_empty(value):
                alert_type = name.removeprefix(env_prefix).lower()
                source = self.merged_sources.get(name, "environment")
                if default_env and alert_type == "default":
                    self._problem(name, source, f"the default is {default_env}")
                    continue
                raw.setdefault(alert_type, []).insert(0, (value, name, source))
        parsed: dict[str, Any] = {}
        for alert_type, layers in sorted(raw.items()):
            for layer, (value, key, source) in enumerate(layers):
                try:
                    result = parse(value)
                except ValueError as exc:
                    self._problem(key, source, str(exc))
                    continue
                if layer == 0:
                    parsed[alert_type] = result
                    self.sources[f"{setting}.{alert_type}"] = source
        return parsed

    def _problem(self, key: str, source: str, message: str) -> None:
        self.problems.append(ConfigProblem(key=key, source=source, message=message))


def _channel_sections(
    table: Mapping[str, Any], toml_source: str, problems: list[ConfigProblem]
) -> dict[str, dict[str, Any]]:
    section = table.get("channels", {})
    if not isinstance(section, Mapping):
        problems.append(
            ConfigProblem(key="channels", source=toml_source, message="expected a table")
        )
        return {}
    sections: dict[str, dict[str, Any]] = {}
    for name, values in section.items():
        if not isinstance(values, Mapping):
            problems.append(
                ConfigProblem(
                    key=f"channels.{name}", source=toml_source, message="expected a table"
                )
            )
            continue
        sections[name.lower()] = dict(values)
    return sections


def _plugin_sections(table: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The ``[plugins.<name>]`` tables (which plugin reads each is checked once the
    plugins are known).
    """
    section = table.get("plugins", {})
    if not isinstance(section, Mapping):
        return {}  # reported as "expected a table" with the other keys
    return {
        name.lower(): dict(values)
        for name, values in section.items()
        if isinstance(values, Mapping) and name != "disable"
    }


def _unknown_toml_keys(table: Mapping[str, Any], toml_source: str) -> list[ConfigProblem]:
    """Name every TOML key no setting reads, so a typo fails at start-up."""
    known = {spec.toml for spec in SETTING_SPECS}
    prefixes = {spec.toml[:depth] for spec in SETTING_SPECS for depth in range(1, len(spec.toml))}
    problems: list[ConfigProblem] = []

    def walk(node: Mapping[str, Any], path: tuple[str, ...]) -> None:
        for key, value in node.items():
            here = (*path, key)
            if here in known or here in _FREE_TABLES:
                continue
            if path == ("plugins",) and isinstance(value, Mapping):
                continue  # a plugin's settings: checked against the plugins found
            if here in prefixes:
                if isinstance(value, Mapping):
                    walk(value, here)
                    continue
                message = "expected a table"
            else:
                message = "unknown setting"
            problems.append(ConfigProblem(key=".".join(here), source=toml_source, message=message))

    walk(table, ())
    return problems
