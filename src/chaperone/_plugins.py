"""The plugin host: built-in plugins and entry points, one pluggy manager.

Built-in plugins are the modules of :mod:`chaperone.builtin`, found by listing that package
and registered through the same marker and manager as external ones, under their dotted
module names. External plugins come from the entry-point group ``chaperone``; each is
loaded and registered in its own try/except, so a broken plugin is logged and listed,
never fatal. The registration
hooks (channels, events, settings, commands) are called plugin by plugin, so one plugin's
failure stays its own.

Every hook is called through pluggy (see :class:`chaperone._hooks.Hooks`), so wrappers
(``wrapper=True``, ``hookwrapper=True``) run on each. Where a spec says "every
implementation is called" (:func:`is_isolated`), each implementation is guarded as it is
registered: one that raises is logged, collected (:func:`collect_failures`) and counts as
no answer, and the rest still run. A hook called once per plugin
(:data:`PER_PLUGIN_HOOKS`) cannot be wrapped: a plugin with a wrapper on it is refused.
"""

from __future__ import annotations

import contextvars
import functools
import importlib
import importlib.metadata
import pkgutil
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cache, partial
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final

import attrs
import pluggy
import structlog

from chaperone import hookspecs
from chaperone._event_codec import EventClasses
from chaperone._events import Event
from chaperone._exceptions import PluginError
from chaperone._markers import PROJECT_NAME
from chaperone._secrets import describe
from chaperone.channels._base import Channel

if TYPE_CHECKING:
    import click

__all__ = [
    "BUILTIN_PACKAGE",
    "ENTRY_POINT_GROUP",
    "PER_PLUGIN_HOOKS",
    "HookFailure",
    "PluginHost",
    "PluginInfo",
    "builtin_modules",
    "collect_failures",
    "is_isolated",
]

ENTRY_POINT_GROUP = PROJECT_NAME

BUILTIN_PACKAGE: Final = "chaperone.builtin"
"""The package whose modules are the built-in plugins (see its docstring for their order)."""

PER_PLUGIN_HOOKS: frozenset[str] = frozenset(
    {
        "chaperone_register_channels",
        "chaperone_register_commands",
        "chaperone_register_events",
        "chaperone_register_settings",
    }
)
"""Hooks the host calls once per plugin, each implementation on its own, so that one
plugin's failure stays its own. No wrapper can wrap such a call: one is refused."""

_log = structlog.get_logger("chaperone.plugins")


@attrs.frozen(kw_only=True)
class HookFailure:
    """An implementation of an isolated hook that raised (its error free of secrets)."""

    hook: str
    plugin: str
    error: str


_FAILURES: contextvars.ContextVar[list[HookFailure] | None] = contextvars.ContextVar(
    "chaperone_hook_failures", default=None
)


@contextmanager
def collect_failures() -> Iterator[list[HookFailure]]:
    """Collect, into the list yielded, the failures of the isolated hook implementations
    that run inside the block (in this context).
    """
    failures: list[HookFailure] = []
    token = _FAILURES.set(failures)
    try:
        yield failures
    finally:
        _FAILURES.reset(token)


def is_isolated(caller: pluggy.HookCaller) -> bool:
    """Whether every implementation of a hook is called, one that raises logged and the
    rest still run: every hook that is neither firstresult nor called per plugin.
    """
    if caller.name in PER_PLUGIN_HOOKS or caller.spec is None:
        return False
    return not caller.spec.opts.get("firstresult", False)


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
    required: str | None = None
    """Why this built-in cannot be disabled (its module's ``REQUIRED``), if it cannot."""

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


@cache
def builtin_modules(package: str = BUILTIN_PACKAGE) -> tuple[ModuleType, ...]:
    """Every module of ``package``, each a built-in plugin, lowest ``ORDER`` first; a
    module that declares no integer ``ORDER`` is a PluginError.
    """
    root = importlib.import_module(package)
    modules = [
        importlib.import_module(f"{package}.{found.name}")
        for found in pkgutil.iter_modules(root.__path__)
    ]
    unordered = [
        module.__name__ for module in modules if not isinstance(getattr(module, "ORDER", None), int)
    ]
    if unordered:
        raise PluginError(f"built-in plugin modules without an ORDER: {', '.join(unordered)}")
    return tuple(sorted(modules, key=lambda module: (module.ORDER, module.__name__)))


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
        name in ``disabled`` (but a built-in that declares ``REQUIRED``: the configuration
        check refuses that).
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
        # built-ins' ORDER is the order their hooks are called in.
        builtins = [
            (
                PluginInfo(
                    name=module.__name__,
                    module=module.__name__,
                    distribution="chaperone-core",
                    version=version,
                    builtin=True,
                    required=getattr(module, "REQUIRED", None),
                ),
                module,
            )
            for module in builtin_modules(BUILTIN_PACKAGE)
        ]
        for info, module in reversed(builtins):
            self._load(info, partial(_identity, module), blocked)
            if info.disabled:
                _list_channels(info, module)
        self.plugins.extend(info for info, _module in builtins)
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
        # In the order listed (built-ins first), so no plugin can take a built-in's channel.
        self._register_each("chaperone_register_channels", "channels", self._channels_of)
        self._register_each("chaperone_register_events", "events", self._events_of)
        self._register_each("chaperone_register_settings", "settings", self._settings_of)

    @property
    def hook(self) -> pluggy.HookRelay:
        """The pluggy hook relay (``host.hook.chaperone_route``); the core calls hooks
        through :class:`chaperone._hooks.Hooks`, which types each call.
        """
        return self.manager.hook

    @property
    def broken(self) -> list[PluginInfo]:
        """Plugins that failed to load or register."""
        return [info for info in self.plugins if info.error]

    def provider_of(self, channel: str) -> PluginInfo | None:
        """The plugin that registered ``channel``, if any."""
        return self._channel_providers.get(channel)

    def owner_of(self, channel: str) -> PluginInfo | None:
        """The plugin that registers ``channel``, or would were it not disabled or broken:
        the one that lists it, else the one named as it (an external channel plugin
        usually is).
        """
        listing = (info for info in self.plugins if channel in info.channels)
        named = (info for info in self.plugins if info.name == channel)
        return next(listing, None) or next(named, None)

    def _load(self, info: PluginInfo, load: Callable[[], object], blocked: set[str]) -> None:
        if info.name.lower() in blocked and info.required is None:
            info.disabled = True
            return
        try:
            plugin = load()
            self.manager.register(plugin, name=info.name)
        except Exception as exc:
            info.error = describe(exc)
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
            info.error = describe(exc)
            _log.error("plugin implements an unknown hook", plugin=info.name, error=info.error)
            return
        try:
            self._prepare(plugin)
        except PluginError as exc:
            self.manager.unregister(name=info.name)
            info.error = describe(exc)
            _log.error("plugin refused", plugin=info.name, error=info.error)

    def attach(self, plugin: object, name: str) -> None:
        """Register a plugin object of the core's own (a runtime's queue length sources,
        say) as any other is, without listing it among the plugins found.
        """
        self.manager.register(plugin, name=name)
        try:
            self.manager.check_pending()
            self._prepare(plugin)
        except Exception:
            self.manager.unregister(name=name)
            raise

    def detach(self, name: str) -> None:
        """Unregister a plugin added with :meth:`attach` (nothing if it is not there)."""
        if self.manager.get_plugin(name) is not None:
            self.manager.unregister(name=name)

    def _prepare(self, plugin: object) -> None:
        """Refuse a wrapper on a hook called per plugin (PluginError naming the hook), and
        guard each implementation of an isolated hook.
        """
        callers = self.manager.get_hookcallers(plugin) or []
        for caller in callers:
            for impl in caller.get_hookimpls():
                if impl.plugin is not plugin:
                    continue
                wrapper = impl.wrapper or impl.hookwrapper
                if wrapper and caller.name in PER_PLUGIN_HOOKS:
                    raise PluginError(
                        f"{caller.name} is called once per plugin and cannot be wrapped: "
                        f"remove wrapper=True/hookwrapper=True from {impl.plugin_name}'s "
                        "implementation"
                    )
                if not wrapper and is_isolated(caller):
                    _guard(caller.name, impl)

    def _channels_of(self, info: PluginInfo) -> Mapping[str, Any]:
        def register(channel_class: type[Channel]) -> None:
            self._add_channel(info, channel_class)

        return {"register": register}

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
                info.error = describe(exc)
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


def _accepted(impl: pluggy.HookImpl, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments an implementation declares (it may take fewer than the spec)."""
    return {name: kwargs[name] for name in impl.argnames if name in kwargs}


def _guard(hook: str, impl: pluggy.HookImpl) -> None:
    """Make ``impl`` log and collect an exception, and answer None, instead of raising."""
    function = impl.function

    @functools.wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> object:
        try:
            return function(*args, **kwargs)
        except Exception as exc:
            failure = HookFailure(hook=hook, plugin=impl.plugin_name, error=describe(exc))
            _log.error("plugin hook raised", hook=hook, plugin=failure.plugin, error=failure.error)
            failures = _FAILURES.get()
            if failures is not None:
                failures.append(failure)
            return None

    # pluggy calls ``impl.function``; its type says Final, but the slot is writable.
    setattr(impl, "function", guarded)  # noqa: B010


def _identity(plugin: object) -> object:
    return plugin


def _list_channels(info: PluginInfo, module: ModuleType) -> None:
    """List the channels a disabled built-in would register, without registering them,
    so that naming one says which plugin is disabled.
    """
    register_channels = getattr(module, "chaperone_register_channels", None)
    if register_channels is not None:
        register_channels(register=lambda channel_class: info.channels.append(channel_class.name))


def _version_of(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
