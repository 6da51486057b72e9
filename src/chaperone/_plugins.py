"""The plugin host: built-in plugins and entry points, one pluggy manager, typed calls.

Built-in plugins register through the same marker and manager as external ones. External
plugins come from the entry-point group ``chaperone``; each is loaded and registered in its
own try/except, so a broken plugin is logged and listed, never fatal. The registration
hooks (channels, events, settings, commands) are called plugin by plugin, so one plugin's
failure stays its own.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import attrs
import pluggy
import structlog

from chaperone import hookspecs
from chaperone._event_codec import EventClasses
from chaperone._events import Event
from chaperone._exceptions import PluginError
from chaperone._markers import PROJECT_NAME
from chaperone._secrets import MASKER
from chaperone.channels._base import Channel

if TYPE_CHECKING:
    import click

__all__ = ["BUILTIN_PLUGINS", "ENTRY_POINT_GROUP", "PluginHost", "PluginInfo"]

ENTRY_POINT_GROUP = PROJECT_NAME

BUILTIN_PLUGINS: tuple[str, ...] = (
    "chaperone.detectors.jobs",
    "chaperone.detectors.queue",
    "chaperone.detectors.thresholds",
    "chaperone.builtin.alerts",
    "chaperone.filters.priority",
    "chaperone.filters.maintenance",
    "chaperone.filters.escalation",
    "chaperone.filters.ratelimit",
    "chaperone.filters.grouping",
    "chaperone.builtin.routing",
    "chaperone.builtin.metrics",
    "chaperone.builtin.selfwatch",
    "chaperone.channels.log",
    "chaperone.channels.database",
)
"""Built-in plugin modules. Filters among them are asked in this order."""

_log = structlog.get_logger("chaperone.plugins")


@attrs.define(kw_only=True)
class PluginInfo:
    """What ``chaperone plugins`` shows about one plugin."""

    name: str
    module: str
    distribution: str
    version: str
    builtin: bool
    channels: list[str] = attrs.field(factory=list)
    error: str | None = None
    disabled: bool = False

    @property
    def status(self) -> str:
        """``ok``, ``broken`` or ``disabled``."""
        if self.disabled:
            return "disabled"
        return "broken" if self.error else "ok"

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form ``chaperone plugins --json`` prints."""
        return {
            "name": self.name,
            "module": self.module,
            "distribution": self.distribution,
            "version": self.version,
            "builtin": self.builtin,
            "channels": list(self.channels),
            "status": self.status,
            "error": self.error,
        }


def _describe(exc: BaseException) -> str:
    return MASKER.mask(f"{type(exc).__name__}: {exc}")


class PluginHost:
    """Owns the pluggy manager, what was found, and what the plugins registered: channel
    classes, event classes, settings classes and (asked for on first use) commands.
    """

    def __init__(
        self,
        *,
        disabled: Iterable[str] = (),
        entry_points: bool = True,
        extra: Sequence[tuple[str, object]] = (),
    ) -> None:
        """Load the built-ins, then (unless ``entry_points`` is False) every entry point of
        the group ``chaperone``, then ``extra`` (name, plugin object) pairs, skipping any
        name in ``disabled``.
        """
        self.manager = pluggy.PluginManager(PROJECT_NAME)
        self.manager.add_hookspecs(hookspecs)
        self.plugins: list[PluginInfo] = []
        self.channel_classes: dict[str, type[Channel]] = {}
        self._channel_providers: dict[str, PluginInfo] = {}
        self.event_classes = EventClasses()
        """The event classes queued events are decoded with: built-in and plugins'."""
        self.settings_classes: dict[str, type[Any]] = {}
        """Plugin name → the attrs class its ``[plugins.<name>]`` settings fill."""
        self._commands: dict[str, click.Command] | None = None
        blocked = {name.strip().lower() for name in disabled}
        version = _version_of("chaperone-core")
        # pluggy calls the latest registered first: register in reverse so that the
        # tuple's order is the order filters are asked in.
        builtins = [
            PluginInfo(
                name=module.rsplit(".", 1)[-1],
                module=module,
                distribution="chaperone-core",
                version=version,
                builtin=True,
            )
            for module in BUILTIN_PLUGINS
        ]
        for info in reversed(builtins):
            self._load(info, partial(importlib.import_module, info.module), blocked)
        self.plugins.extend(builtins)
        if entry_points:
            for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
                info = PluginInfo(
                    name=entry_point.name,
                    module=entry_point.value,
                    distribution=entry_point.dist.name if entry_point.dist else "unknown",
                    version=entry_point.dist.version if entry_point.dist else "unknown",
                    builtin=False,
                )
                self.plugins.append(info)
                self._load(info, entry_point.load, blocked)
        for name, plugin in extra:
            info = PluginInfo(
                name=name,
                module=getattr(plugin, "__name__", type(plugin).__name__),
                distribution="(registered in code)",
                version="",
                builtin=False,
            )
            self.plugins.append(info)
            self._load(info, partial(_identity, plugin), blocked)
        self._register_channels()
        self._register_each("chaperone_register_events", "events", self._events_of)
        self._register_each("chaperone_register_settings", "settings", self._settings_of)

    @property
    def hook(self) -> Any:
        """The pluggy hook relay (``host.hook.chaperone_route(...)``)."""
        return self.manager.hook

    @property
    def broken(self) -> list[PluginInfo]:
        """Plugins that failed to load or register."""
        return [info for info in self.plugins if info.error]

    def provider_of(self, channel: str) -> PluginInfo | None:
        """The plugin that registered ``channel``, if any."""
        return self._channel_providers.get(channel)

    def _load(self, info: PluginInfo, load: Callable[[], object], blocked: set[str]) -> None:
        if info.name.lower() in blocked:
            info.disabled = True
            return
        try:
            plugin = load()
            self.manager.register(plugin, name=info.name)
        except Exception as exc:
            info.error = _describe(exc)
            _log.error(
                "plugin failed to load; check compatible versions",
                plugin=info.name,
                error=info.error,
            )
            return
        try:
            self.manager.check_pending()
        except Exception as exc:
            self.manager.unregister(name=info.name)
            info.error = _describe(exc)
            _log.error("plugin implements an unknown hook", plugin=info.name, error=info.error)

    def _register_channels(self) -> None:
        """Ask each plugin for its channels, one at a time, so one failure stays its own,
        in the order listed (built-ins first), so a plugin cannot take a built-in's name.
        """
        impls = {
            impl.plugin_name: impl for impl in self.hook.chaperone_register_channels.get_hookimpls()
        }
        for info in self.plugins:
            impl = None if info.disabled or info.error else impls.pop(info.name, None)
            if impl is None:
                continue

            def register(channel_class: type[Channel], info: PluginInfo = info) -> None:
                self._add_channel(info, channel_class)

            try:
                impl.function(**_accepted(impl, {"register": register}))
            except Exception as exc:
                info.error = _describe(exc)
                _log.error("plugin failed to register channels", plugin=info.name, error=info.error)

    def _add_channel(self, info: PluginInfo, channel_class: type[Channel]) -> None:
        if not (isinstance(channel_class, type) and issubclass(channel_class, Channel)):
            raise PluginError(f"register() takes a Channel subclass, got {channel_class!r}")
        name = getattr(channel_class, "name", "")
        if not isinstance(name, str) or not name:
            raise PluginError(f"{channel_class.__qualname__} has no channel name")
        existing = self._channel_providers.get(name)
        if existing is not None and existing is not info:
            raise PluginError(f"channel {name!r} is already registered by plugin {existing.name!r}")
        self.channel_classes[name] = channel_class
        self._channel_providers[name] = info
        if name not in info.channels:
            info.channels.append(name)

    def _register_each(
        self,
        hook_name: str,
        what: str,
        arguments: Callable[[PluginInfo], Mapping[str, Any]],
    ) -> None:
        """Call a registration hook plugin by plugin, in the order listed (built-ins
        first), each with its own ``arguments``, so one plugin's failure stays its own
        (the plugin is listed broken).
        """
        impls = {impl.plugin_name: impl for impl in getattr(self.hook, hook_name).get_hookimpls()}
        for info in self.plugins:
            impl = None if info.disabled or info.error else impls.pop(info.name, None)
            if impl is None:
                continue
            try:
                impl.function(**_accepted(impl, arguments(info)))
            except Exception as exc:
                info.error = _describe(exc)
                _log.error(f"plugin failed to register {what}", plugin=info.name, error=info.error)

    def _events_of(self, info: PluginInfo) -> Mapping[str, Any]:
        def register(event_class: type[Event]) -> None:
            self.event_classes.register(event_class, info.name)

        return {"register": register}

    def _settings_of(self, info: PluginInfo) -> Mapping[str, Any]:
        def register(settings_class: type[Any]) -> None:
            if not (isinstance(settings_class, type) and attrs.has(settings_class)):
                raise PluginError(
                    f"plugin {info.name!r}: register() takes an attrs class, got {settings_class!r}"
                )
            if info.name in self.settings_classes:
                raise PluginError(f"plugin {info.name!r} registered its settings twice")
            self.settings_classes[info.name] = settings_class

        return {"register": register}

    def commands(self, reserved: Iterable[str]) -> dict[str, click.Command]:
        """The plugins' subcommands by name, asked for on first use. A command named like
        one of ``reserved`` (the built-in commands) or like one an earlier plugin added is
        refused, and its plugin listed broken, with none of its commands added.
        """
        if self._commands is None:
            groups: dict[str, click.Group] = {}
            self._register_each(
                "chaperone_register_commands",
                "commands",
                partial(self._commands_of, groups=groups, reserved=frozenset(reserved)),
            )
            self._commands = {}
            for info in self.plugins:
                group = groups.get(info.name)
                if group is not None and not info.error:
                    self._commands.update(group.commands)
        return self._commands

    def _commands_of(
        self, info: PluginInfo, groups: dict[str, click.Group], reserved: frozenset[str]
    ) -> Mapping[str, Any]:
        import click  # only where commands are asked for: not in a job's process

        def taken_by(name: str) -> str | None:
            if name in reserved:
                return "a built-in command's name"
            for other, group in groups.items():
                if other != info.name and name in group.commands:
                    return f"already added by plugin {other!r}"
            return None

        class PluginCommands(click.Group):
            """Collects one plugin's commands, refusing names already taken."""

            def add_command(self, cmd: click.Command, name: str | None = None) -> None:
                name = name or cmd.name
                if not name:
                    raise PluginError(f"plugin {info.name!r}: a command needs a name")
                taken = taken_by(name)
                if taken is not None:
                    raise PluginError(f"plugin {info.name!r}: command {name!r} is {taken}")
                super().add_command(cmd, name)

        groups[info.name] = PluginCommands(info.name)
        return {"cli": groups[info.name]}

    def call_each(
        self,
        hook_name: str,
        *,
        on_error: Callable[[str, Exception], object] | None = None,
        **kwargs: Any,
    ) -> list[Any]:
        """Call every implementation of a hook in pluggy's order and return the results
        that are not None; one that raises is logged (and passed to ``on_error`` with the
        plugin's name) and the others still run.
        """
        caller = getattr(self.hook, hook_name)
        results = []
        for impl in reversed(caller.get_hookimpls()):
            if impl.hookwrapper or impl.wrapper:
                continue
            try:
                result = impl.function(**_accepted(impl, kwargs))
            except Exception as exc:
                _log.error(
                    "plugin hook raised",
                    hook=hook_name,
                    plugin=impl.plugin_name,
                    error=_describe(exc),
                )
                if on_error is not None:
                    on_error(impl.plugin_name, exc)
                continue
            if result is not None:
                results.append(result)
        return results


def _accepted(impl: pluggy.HookImpl, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments an implementation declares (it may take fewer than the spec)."""
    return {name: kwargs[name] for name in impl.argnames if name in kwargs}


def _identity(plugin: object) -> object:
    return plugin


def _version_of(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
