"""Gather a channel's settings from TOML, the environment and a route, in that order."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from chaperone._clock import Clock
from chaperone._secrets import MASKER
from chaperone.channels._base import Channel, ChannelSettings

if TYPE_CHECKING:
    from chaperone.config import Settings
    from chaperone.store import Store

__all__ = ["channel_settings", "env_prefix", "package_for_channel"]


def env_prefix(channel_name: str) -> str:
    """The prefix of a channel's own environment variables: ``CHAPERONE_SLACK_``."""
    return f"CHAPERONE_{channel_name.upper().replace('-', '_')}_"


def package_for_channel(name: str) -> str:
    """The distribution that provides channel ``name`` by our naming rule."""
    return f"chaperone-{name}"


def channel_settings(
    channel_class: type[Channel],
    *,
    app: Settings,
    store: Store,
    clock: Clock,
    route: str = "default",
    overrides: Mapping[str, Any] | None = None,
) -> ChannelSettings:
    """Merge ``[channels.<name>]`` < environment (and aliases) < route overrides.

    Every value under one of the class's ``secret_keys`` is registered with the masker
    here, before anything could print it.
    """
    name = channel_class.name
    values: dict[str, Any] = {}
    origins: dict[str, tuple[str, str]] = {}
    toml_source = app.config_file or "config file"
    for key, value in app.channel_sections.get(name, {}).items():
        values[key] = value
        origins[key] = (f"channels.{name}.{key}", toml_source)
    for variable, key in channel_class.env_aliases.items():
        if app.environ.get(variable, "").strip():
            values[key] = app.environ[variable]
            origins[key] = (variable, app.environ_sources.get(variable, "environment"))
    prefix = env_prefix(name)
    for variable, value in app.environ.items():
        if variable.startswith(prefix) and value.strip():
            key = variable.removeprefix(prefix).lower()
            values[key] = value
            origins[key] = (variable, app.environ_sources.get(variable, "environment"))
    for key, value in (overrides or {}).items():
        values[key] = value
        origins[key] = (f"{name}.{key}", f"route {route!r}")
    for key in channel_class.secret_keys:
        if isinstance(values.get(key), str):
            MASKER.add(values[key].strip())
    return ChannelSettings(
        channel=name,
        values=values,
        origins=origins,
        app=app,
        store=store,
        clock=clock,
        aliases={key: variable for variable, key in channel_class.env_aliases.items()},
    )
