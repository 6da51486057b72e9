"""The plugin host: built-in plugins and entry points, one pluggy manager.

Built-in plugins register through the same marker and manager as external ones. External
plugins come from the entry-point group ``chaperone``; each is loaded and registered in its
own try/except, so a broken plugin is logged and listed, never fatal.

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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any

import attrs
import pluggy
import structlog

from chaperone import hookspecs
from chaperone._exceptions import PluginError
from chaperone._markers import PROJECT_NAME
from chaperone._secrets import describe
from chaperone.channels._base import Channel

__all__ = [
    "BUILTIN_PLUGINS",
    "ENTRY_POINT_GROUP",
    "PER_PLUGIN_HOOKS",
    "HookFailure",
    "PluginHost",
    "PluginInfo",
    "collect_failures",
    "is_isolated",
]

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

PER_PLUGIN_HOOKS: frozenset[str] = frozenset({"chaperone_register_channels"})
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


class PluginHost:
    """Owns the pluggy manager, what was found, and the channel classes registered."""

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

    def _load(self, info: PluginInfo, load: Callable[[], object], blocked: set[str]) -> None:
        if info.name.lower() in blocked:
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
                info.error = describe(exc)
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


def _version_of(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
