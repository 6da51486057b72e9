"""A plugin's own settings: ``[plugins.<name>]`` and ``CHAPERONE_<NAME>_<FIELD>``.

A plugin declares an attrs class through the ``chaperone_register_settings`` hook; its
fields are the settings. Each is read like a core setting, defaults < TOML file
(``[plugins.<name>]``, or ``[tool.chaperone.plugins.<name>]``) < ``.env`` <
environment, every layer checked, and parsed by the field's type. A field marked
``metadata={"secret": True}`` is masked in ``chaperone config show``, in logs and in
errors. Each bad value is one :class:`ConfigProblem` naming the setting and its source.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from typing import Any, Final

import attrs

from chaperone._exceptions import ConfigProblem
from chaperone._secrets import MASKER
from chaperone.config._parsing import (
    parse_bool,
    parse_duration_setting,
    parse_float,
    parse_int,
    parse_text,
    parse_texts,
)
from chaperone.config._settings import Settings

__all__ = [
    "SECRET",
    "PluginSetting",
    "bind_plugin_settings",
    "plugin_env_prefix",
    "read_plugin_settings",
]

SECRET: Final = "secret"  # noqa: S105 - the name of a marker, not a password
"""The field metadata key that marks a plugin setting as a secret."""

_PARSERS: Final[Mapping[Any, Callable[[Any], Any]]] = {
    str: parse_text,
    bool: parse_bool,
    int: lambda value: parse_int(value, minimum=-(2**63)),
    float: parse_float,
    timedelta: parse_duration_setting,
}


def plugin_env_prefix(name: str) -> str:
    """The prefix of a plugin's variables: ``CHAPERONE_MYFILTER_`` for ``myfilter``."""
    return f"CHAPERONE_{name.upper().replace('-', '_').replace('.', '_')}_"


@attrs.frozen
class PluginSetting:
    """One setting of a plugin as read: its dotted name, variable, value and source."""

    name: str
    env: str
    value: Any
    source: str
    secret: bool


@attrs.frozen
class _Read:
    """What reading one plugin's settings gave."""

    instance: Any
    rows: list[PluginSetting]
    problems: list[ConfigProblem]


def read_plugin_settings(
    settings: Settings, classes: Mapping[str, type[Any]]
) -> tuple[dict[str, Any], list[PluginSetting], list[ConfigProblem]]:
    """Read every plugin's settings: the valid instances by plugin name, a row per
    setting (as ``config show`` lists them), and every problem found.
    """
    instances: dict[str, Any] = {}
    rows: list[PluginSetting] = []
    problems: list[ConfigProblem] = []
    for name, settings_class in sorted(classes.items()):
        read = _read_one(settings, name, settings_class)
        rows.extend(read.rows)
        problems.extend(read.problems)
        if read.instance is not None:
            instances[name] = read.instance
    return instances, rows, problems


def bind_plugin_settings(settings: Settings, classes: Mapping[str, type[Any]]) -> Settings:
    """``settings`` with the plugins' valid settings, for :meth:`Settings.plugin`."""
    instances, _rows, _problems = read_plugin_settings(settings, classes)
    return attrs.evolve(settings, plugin_values=instances)


def _read_one(settings: Settings, name: str, settings_class: type[Any]) -> _Read:
    section = settings.plugin_sections.get(name.lower(), {})
    toml_source = settings.config_file or "config file"
    prefix = plugin_env_prefix(name)
    fields = [field for field in attrs.fields(_resolved(settings_class)) if field.init]
    values: dict[str, Any] = {}
    rows: list[PluginSetting] = []
    problems: list[ConfigProblem] = []
    sources: list[str] = []
    for field in fields:
        key = f"plugins.{name}.{field.alias}"
        env = f"{prefix}{field.alias.upper()}"
        secret = bool(field.metadata.get(SECRET))
        parse = _parser(field.type)
        chosen: tuple[Any, str] | None = None
        toml_value = section.get(field.alias)
        for raw, where, source in _layers(settings, env, toml_value, key, toml_source):
            if secret and isinstance(raw, str):
                MASKER.add(raw)
            try:
                value = parse(raw)
            except ValueError as exc:
                problems.append(ConfigProblem(key=where, source=source, message=_line(exc)))
                continue
            if chosen is None:
                chosen = (value, source)
        if chosen is not None:
            values[field.alias] = chosen[0]
            sources.append(chosen[1])
            rows.append(PluginSetting(key, env, chosen[0], chosen[1], secret))
        elif field.default is attrs.NOTHING:
            problems.append(
                ConfigProblem(key=key, source="default", message=f"required: set it or {env}")
            )
        else:
            default = _default_of(field)
            rows.append(PluginSetting(key, env, default, "default", secret))
    if problems:
        return _Read(None, rows, problems)
    try:
        instance = settings_class(**values)
    except (TypeError, ValueError) as exc:
        source = next((source for source in sources if source != "default"), "default")
        return _Read(None, rows, [ConfigProblem(f"plugins.{name}", source, _line(exc))])
    return _Read(instance, rows, [])


def _layers(
    settings: Settings, env: str, toml_value: Any, key: str, toml_source: str
) -> Iterator[tuple[Any, str, str]]:
    """The raw values of one setting, the highest layer first, with key and source."""
    raw = settings.environ.get(env, "")
    if raw.strip():
        yield raw, env, settings.environ_sources.get(env, "environment")
    if toml_value is not None and not (isinstance(toml_value, str) and not toml_value.strip()):
        yield toml_value, key, toml_source


def _resolved(settings_class: type[Any]) -> type[Any]:
    """The class with its annotations resolved to types, where they resolve."""
    try:
        return attrs.resolve_types(settings_class)
    except NameError:
        return settings_class


def _parser(annotation: Any) -> Callable[[Any], Any]:
    """Read a value of the type ``annotation`` names; any other type's value is passed as
    it is, for the field's own converter and validators to judge.
    """
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        present = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(present) == 1:
            return _parser(present[0])
    if typing.get_origin(annotation) in (tuple, list) and set(typing.get_args(annotation)) <= {
        str,
        Ellipsis,
    }:
        return parse_texts
    return _PARSERS.get(annotation, _as_is)


def _as_is(value: Any) -> Any:
    return value


def _default_of(field: attrs.Attribute[Any]) -> Any:
    default = field.default
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        return None  # built by the class; shown as unset
    return default


def _line(exc: Exception) -> str:
    """An exception's message as one line, free of secrets."""
    return MASKER.mask(" ".join(str(exc).split()) or type(exc).__name__)
