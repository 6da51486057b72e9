"""Names nothing reads: typos that would otherwise be ignored without a word.

- a ``CHAPERONE_*`` variable that no setting and no installed channel reads;
- a key under ``[channels.<name>]``, in a route's settings for a channel, or in a
  ``CHAPERONE_<NAME>_<KEY>`` variable, that the channel does not declare (see
  :attr:`chaperone.Channel.setting_keys`; a channel that declares none is not checked);
- a ``[channels.<name>]`` table of no installed channel;
- a ``[plugins.<name>]`` table of no installed plugin (or of one that declares no
  settings), or a key in it or a ``CHAPERONE_<NAME>_<FIELD>`` variable that is not a
  field of the plugin's settings class; and each plugin setting's bad value;
- a name in ``CHAPERONE_DISABLE_PLUGINS`` of no installed plugin (a built-in's short
  name of old, ``ratelimit``, is one: built-ins go by their module's dotted name), or of
  a built-in that cannot be disabled.

Each is a :class:`ConfigProblem` saying "did you mean …" when a known name is close, and
which plugin to install when the name belongs to a channel that is not installed. Which
channels are installed is the plugin host's to say, so :meth:`chaperone.Runtime.check`
calls :func:`unknown_names` beside its channel checks.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final

import attrs

from chaperone._exceptions import ConfigProblem
from chaperone._policy import CORE_KEYS
from chaperone.channels._base import Channel
from chaperone.channels._configure import env_prefix, package_for_channel
from chaperone.config._loading import (
    ESCALATION_ENV_PREFIX,
    RATE_LIMIT_ENV_PREFIX,
    RUNBOOK_ENV_PREFIX,
    SETTING_SPECS,
)
from chaperone.config._plugin_settings import plugin_env_prefix, read_plugin_settings

if TYPE_CHECKING:
    from chaperone._plugins import PluginHost
    from chaperone.config._settings import Settings

__all__ = ["OTHER_VARIABLES", "channel_keys", "disable_problems", "unknown_names"]

VARIABLE_PREFIX: Final = "CHAPERONE_"
OTHER_VARIABLES: Final[Mapping[str, str]] = {
    "CHAPERONE_CONFIG": "the TOML file to read instead of ./chaperone.toml",
    "CHAPERONE_SUPERVISION_ID": "set by `chaperone run` for the job it supervises",
    "CHAPERONE_HEARTBEAT_FILE": "set by `chaperone run`: where the job's heartbeats go",
    "CHAPERONE_TEST_REDIS": "read by Chaperone's own test suite",
    "CHAPERONE_TEST_BROWSER": "read by Chaperone's own test suite (its browser tests)",
    "CHAPERONE_TEST_CHROMIUM": "read by Chaperone's own test suite (its browser tests)",
    "CHAPERONE_TEST_ARTIFACTS": "read by Chaperone's own test suite (its screenshots)",
    "CHAPERONE_TEST_DOCS_IMAGES": "read by Chaperone's own test suite (the docs' screenshots)",
    "CHAPERONE_BENCH_RESULTS": "read by Chaperone's own benchmarks",
}
"""The ``CHAPERONE_*`` variables read besides the settings, and by what."""
PER_TYPE_PREFIXES: Final = (RATE_LIMIT_ENV_PREFIX, ESCALATION_ENV_PREFIX, RUNBOOK_ENV_PREFIX)
"""Prefixes followed by an alert type (any name: users define their own types)."""
_SHORTEST_STEM: Final = 3
"""The fewest letters of a short name of old that may stand for a built-in (``log``)."""
_CLOSE_NAMES: Final = 0.75
"""How alike two names must be (difflib's ratio) to suggest one for the other."""
_CLOSE_VARIABLES: Final = 0.8
"""The same for variables, compared without ``CHAPERONE_``: ``SLACK_WEBHOOK_URL`` is not
``DISCORD_WEBHOOK_URL`` mistyped (0.78)."""


def channel_keys(channel_class: type[Channel]) -> frozenset[str] | None:
    """The keys a channel reads: those its class itself declares in ``setting_keys``
    and the delivery settings every channel takes; None when the class declares none
    (its keys are not checked).
    """
    declared = vars(channel_class).get("setting_keys")
    if declared is None:
        return None
    return frozenset(declared) | CORE_KEYS


def unknown_names(settings: Settings, plugins: PluginHost) -> list[ConfigProblem]:
    """A problem for every name in the configuration that nothing reads: variables,
    channel tables and keys, route settings and disabled plugins.
    """
    checker = _Checker(settings, plugins)
    _instances, _rows, plugin_problems = read_plugin_settings(settings, plugins.settings_classes)
    return [
        *checker.channel_tables(),
        *checker.route_settings(),
        *checker.plugin_tables(),
        *plugin_problems,
        *checker.variables(),
        *checker.disabled_plugins(),
    ]


def disable_problems(settings: Settings, plugins: PluginHost) -> list[ConfigProblem]:
    """A problem for every name in ``plugins.disable`` that no plugin has, or that names
    a built-in that cannot be disabled (both stop the monitor from starting).
    """
    return list(_Checker(settings, plugins).disabled_plugins())


def _suggestion(name: str, known: Iterable[str]) -> str | None:
    """The known name closest to ``name`` (ignoring case), if one is close; variables
    are compared without their common ``CHAPERONE_``.
    """
    by_folded = {_folded(candidate): candidate for candidate in known}
    cutoff = _CLOSE_VARIABLES if name.startswith(VARIABLE_PREFIX) else _CLOSE_NAMES
    close = difflib.get_close_matches(_folded(name), list(by_folded), n=1, cutoff=cutoff)
    return by_folded[close[0]] if close else None


def _plugin_hint(name: str, known: Iterable[str], builtins: Iterable[str]) -> str:
    """What to say after "no installed plugin is named ``name``": the built-ins whose
    module a short name of old (``ratelimit``, ``jobs``) stands for, else the closest
    name, else every name.
    """
    stem = name.removesuffix("s")
    meant = sorted(builtin for builtin in builtins if stem in builtin.rsplit(".", 1)[-1])
    if "." not in name and len(stem) >= _SHORTEST_STEM and meant:
        spelled = " or ".join(repr(builtin) for builtin in meant)
        return f"; built-in plugins go by their module's name: did you mean {spelled}?"
    close = _suggestion(name, known)
    everything = ", ".join(sorted(known))
    return f"; did you mean {close}?" if close else f" (installed plugins: {everything})"


def _folded(name: str) -> str:
    return name.removeprefix(VARIABLE_PREFIX).casefold()


def _no_such_key(
    channel: str, key: str, keys: Iterable[str], named: Mapping[str, str], kind: str = "channel"
) -> str:
    """Say that ``channel`` (or another ``kind`` of owner) has no setting ``key``, with the
    closest of its ``keys`` as ``named`` spells it (the key, or its variable), or all of
    them when none is close.
    """
    close = _suggestion(named[key], [named[known] for known in keys])
    return f"{kind} {channel!r} has no setting {key!r}; " + (
        f"did you mean {close}?" if close else f"its settings are {', '.join(sorted(keys))}"
    )


class _Checker:
    """The configuration and the installed plugins, and the checks between them."""

    def __init__(self, settings: Settings, plugins: PluginHost) -> None:
        self.settings = settings
        self.classes: Mapping[str, type[Channel]] = plugins.channel_classes
        self.plugin_names = [info.name for info in plugins.plugins]
        self.builtin_names = [info.name for info in plugins.plugins if info.builtin]
        self.disabled_channels = {
            *settings.disabled_plugins,  # an external channel plugin is named as its channel
            *(channel for info in plugins.plugins if info.disabled for channel in info.channels),
        }
        self.required = {info.name: info.required for info in plugins.plugins if info.required}
        self.plugin_fields = {
            name.lower(): frozenset(
                field.alias for field in attrs.fields(settings_class) if field.init
            )
            for name, settings_class in plugins.settings_classes.items()
        }
        self.config_file = settings.config_file or "config file"

    def _installed(self) -> str:
        return ", ".join(sorted(self.classes)) or "none"

    def _key_problems(
        self, channel: str, values: Mapping[str, Any], where: str, source: str
    ) -> Iterator[ConfigProblem]:
        keys = channel_keys(self.classes[channel])
        if keys is None:
            return
        for key in values:
            if key not in keys:
                message = _no_such_key(channel, key, keys, {name: name for name in {key, *keys}})
                yield ConfigProblem(key=f"{where}.{key}", source=source, message=message)

    def channel_tables(self) -> Iterator[ConfigProblem]:
        """``[channels.<name>]``: an installed channel's, holding only its keys."""
        for name, values in self.settings.channel_sections.items():
            if name in self.classes:
                yield from self._key_problems(name, values, f"channels.{name}", self.config_file)
                continue
            if name in self.disabled_channels:
                continue  # its plugin is there, disabled on purpose: the table may stay
            close = _suggestion(name, self.classes)
            install = f"pip install {package_for_channel(name)}"
            message = f"no installed plugin provides channel {name!r}; " + (
                f"did you mean {close}? If not, install it with: {install}"
                if close
                else f"install it with: {install} (installed channels: {self._installed()})"
            )
            yield ConfigProblem(key=f"channels.{name}", source=self.config_file, message=message)

    def route_settings(self) -> Iterator[ConfigProblem]:
        """A route's settings for an installed channel hold only that channel's keys (a
        channel that is not installed is reported with the route's channels).
        """
        for index, route in enumerate(self.settings.routes):
            for name, values in route.channel_settings.items():
                if name in self.classes:
                    where = f"alerting.routes[{index}].{name}"
                    yield from self._key_problems(name, values, where, self.config_file)

    def plugin_tables(self) -> Iterator[ConfigProblem]:
        """``[plugins.<name>]``: a plugin's that declares settings, holding only them."""
        known = {name.lower() for name in self.plugin_names}
        for name, values in self.settings.plugin_sections.items():
            where = f"plugins.{name}"
            fields = self.plugin_fields.get(name)
            if fields is not None:
                for key in values:
                    if key not in fields:
                        message = _no_such_key(
                            name, key, fields, {k: k for k in {key, *fields}}, "plugin"
                        )
                        yield ConfigProblem(f"{where}.{key}", self.config_file, message)
            elif name in self.settings.disabled_plugins:
                continue  # disabled on purpose: its table may stay
            elif name in known:
                yield ConfigProblem(where, self.config_file, f"plugin {name!r} has no settings")
            else:
                close = _suggestion(name, known)
                message = f"no installed plugin is named {name!r}" + (
                    f"; did you mean {close}?" if close else ""
                )
                yield ConfigProblem(where, self.config_file, message)

    def _plugin_variable_problem(self, variable: str) -> str | None:
        """What is wrong with a variable of a plugin's prefix; None if a field reads it
        (or no plugin with settings owns the prefix).
        """
        for name, fields in self.plugin_fields.items():
            prefix = plugin_env_prefix(name)
            if not variable.startswith(prefix):
                continue
            key = variable.removeprefix(prefix).lower()
            if key in fields:
                return None
            named = {field: f"{prefix}{field.upper()}" for field in {key, *fields}}
            return _no_such_key(name, key, fields, named, "plugin")
        return None

    def _channel_variables(self) -> list[str]:
        """Every variable of an installed channel that declares its keys."""
        return [
            f"{env_prefix(name)}{key.upper()}"
            for name, channel_class in self.classes.items()
            for key in channel_keys(channel_class) or ()
        ]

    def _configured_channels(self) -> set[str]:
        """Every channel the configuration names: the default route's, the routes',
        those with a ``[channels.<name>]`` table, and those of the disabled plugins.
        """
        names = {
            *self.settings.channels,
            *self.settings.channel_sections,
            *self.disabled_channels,
        }
        for route in self.settings.routes:
            names.update(route.channels)
        return names

    def variables(self) -> Iterator[ConfigProblem]:
        """Every ``CHAPERONE_*`` variable set (in the environment or ``.env``) is read by
        a setting, a per-type table, or an installed channel.
        """
        core = {spec.env for spec in SETTING_SPECS} | set(OTHER_VARIABLES)
        channel_variables = self._channel_variables()
        configured = self._configured_channels() - set(self.classes)
        for variable, value in sorted(self.settings.environ.items()):
            if not variable.startswith(VARIABLE_PREFIX) or not value.strip():
                continue
            if variable in core or any(
                variable.startswith(prefix) and variable != prefix for prefix in PER_TYPE_PREFIXES
            ):
                continue
            source = self.settings.environ_sources.get(variable, "environment")
            message = self._variable_problem(variable, core, channel_variables, configured)
            if message is not None:
                yield ConfigProblem(key=variable, source=source, message=message)

    def _variable_problem(
        self,
        variable: str,
        core: set[str],
        channel_variables: list[str],
        configured: set[str],
    ) -> str | None:
        """What is wrong with ``variable``, which no setting reads; None if a channel
        reads it, or belongs to a configured channel that is not installed (whose own
        problem says what to install).
        """
        owners = sorted(
            (name for name in self.classes if variable.startswith(env_prefix(name))),
            key=len,
            reverse=True,
        )
        for name in owners:
            keys = channel_keys(self.classes[name])
            if keys is None or variable.removeprefix(env_prefix(name)).lower() in keys:
                return None
        plugin_problem = self._plugin_variable_problem(variable)
        if plugin_problem is not None or any(
            variable.startswith(plugin_env_prefix(name)) for name in self.plugin_fields
        ):
            return plugin_problem
        if owners:
            prefix = env_prefix(owners[0])
            key = variable.removeprefix(prefix).lower()
            keys = channel_keys(self.classes[owners[0]]) or frozenset()
            named = {name: f"{prefix}{name.upper()}" for name in {key, *keys}}
            return _no_such_key(owners[0], key, keys, named)
        if any(variable.startswith(env_prefix(name)) for name in configured):
            return None
        close = _suggestion(variable, [*core, *channel_variables])
        if close:
            return f"no setting is named so; did you mean {close}?"
        word, separator, _key = variable.removeprefix(VARIABLE_PREFIX).partition("_")
        if not separator or any(name.startswith(f"{VARIABLE_PREFIX}{word}_") for name in core):
            return "no setting is named so"
        channel = word.lower()
        return (
            f"no setting or installed channel reads it; if it is a setting of channel "
            f"{channel!r}, install that channel: pip install {package_for_channel(channel)}"
        )

    def disabled_plugins(self) -> Iterator[ConfigProblem]:
        """Every name in ``CHAPERONE_DISABLE_PLUGINS`` is an installed plugin's, and none
        a built-in's that cannot be disabled.
        """
        env = next(spec.env for spec in SETTING_SPECS if spec.name == "plugins.disable")
        key = env if self.settings.environ.get(env, "").strip() else "plugins.disable"
        source = self.settings.source_of("plugins.disable")
        known = {name.lower() for name in self.plugin_names}
        for name in self.settings.disabled_plugins:
            if name in self.required:
                message = f"the built-in plugin {name!r} cannot be disabled: {self.required[name]}"
            elif name in known:
                continue
            else:
                hint = _plugin_hint(name, known, self.builtin_names)
                message = f"no installed plugin is named {name!r}{hint}"
            yield ConfigProblem(key=key, source=source, message=message)
