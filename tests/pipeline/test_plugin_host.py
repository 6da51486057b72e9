"""The plugin host: built-ins, plugins from entry points and code, isolation of failures."""

from __future__ import annotations

import importlib.metadata
import sys
import types
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import pytest

import chaperone
from chaperone import (
    Alert,
    Channel,
    ChannelSettings,
    Destination,
    Outcome,
    PluginHost,
    Secret,
    SendContext,
    Verdict,
)
from chaperone import _plugins as plugins_module
from chaperone._exceptions import PluginError
from chaperone._plugins import builtin_modules
from chaperone.builtin.database_channel import DatabaseChannel
from chaperone.builtin.log_channel import LogChannel

# -------------------------------------------------------------------------------------
# Helpers
# -------------------------------------------------------------------------------------


def channel_class(name: str) -> type[Channel]:
    """A do-nothing channel class called ``name``."""

    class Quiet(Channel):
        @classmethod
        def from_settings(cls, settings: ChannelSettings) -> Self:
            return cls()

        async def send(self, alert: Alert, context: SendContext) -> Outcome:
            return Outcome.delivered()

    Quiet.name = name
    return Quiet


class Channels:
    """A plugin that registers the given channel classes."""

    def __init__(self, *classes: Any) -> None:
        self.classes = classes

    @chaperone.hookimpl
    def chaperone_register_channels(self, register: Any) -> None:
        for item in self.classes:
            register(item)


class Recorder:
    """A plugin whose filter and delivered hooks record their calls in a shared list."""

    def __init__(self, name: str, calls: list[str], *, fail: bool = False) -> None:
        self.name = name
        self.calls = calls
        self.fail = fail

    @chaperone.hookimpl
    def chaperone_filter_alert(self, alert: Alert) -> Verdict | None:
        self.calls.append(self.name)
        return None

    @chaperone.hookimpl
    def chaperone_delivered(
        self, alert: Alert, destination: Destination, outcome: Outcome, runtime: Any
    ) -> None:
        self.calls.append(self.name)
        if self.fail:
            raise RuntimeError(f"{self.name} failed")


BUILTIN_FILTERS = (
    "chaperone.builtin.maintenance_windows",
    "chaperone.builtin.escalation_filter",
    "chaperone.builtin.ratelimit_filter",
    "chaperone.builtin.alert_grouping",
)
"""The built-in filter plugins asked after a plugin's, in the order they are asked."""
OPEN_INCIDENTS = "chaperone.builtin.open_incidents"
"""The built-in filter asked before every other (``tryfirst``): it counts each alert in
its incident before any filter can suppress it."""
LOG = "chaperone.builtin.log_channel"
DATABASE = "chaperone.builtin.database_channel"
GROUPING = "chaperone.builtin.alert_grouping"
"""The one built-in filter that cannot be disabled (it flushes what it held)."""


def host(*plugins: tuple[str, object], disabled: tuple[str, ...] = ()) -> PluginHost:
    """A host with the built-ins and ``plugins``, no entry points."""
    return PluginHost(entry_points=False, extra=list(plugins), disabled=disabled)


def info(plugin_host: PluginHost, name: str) -> plugins_module.PluginInfo:
    """The PluginInfo called ``name``."""
    (found,) = [item for item in plugin_host.plugins if item.name == name]
    return found


def call_order(plugin_host: PluginHost, hook: str) -> list[str]:
    """The plugin names of ``hook``'s implementations, in the order pluggy calls them."""
    caller = getattr(plugin_host.hook, hook)
    return [impl.plugin_name for impl in reversed(caller.get_hookimpls())]


def an_alert() -> Alert:
    """A firing alert."""
    return Alert(
        type="job_stuck",
        key="sup-1",
        headline="Job Stuck",
        title="Job Stuck: J",
        summary="Stuck.",
        occurred_at=datetime(2024, 1, 15, tzinfo=UTC),
    )


def fake_module(name: str, **functions: Callable[..., Any]) -> types.ModuleType:
    """A module object called ``name`` holding ``functions`` (already hookimpl-marked)."""
    module = types.ModuleType(name)
    for attribute, function in functions.items():
        setattr(module, attribute, function)
    return module


# -------------------------------------------------------------------------------------
# Tests
# -------------------------------------------------------------------------------------


class TestBuiltins:
    def test_builtins_are_listed_and_registered_in_order(self) -> None:
        """Every built-in module is listed in ORDER, under its dotted name, ok and
        registered.
        """
        plugin_host = host()
        builtins = [item for item in plugin_host.plugins if item.builtin]
        assert [item.module for item in builtins] == [m.__name__ for m in builtin_modules()]
        assert [item.name for item in builtins] == [item.module for item in builtins]
        assert all(item.status == "ok" for item in builtins)
        assert all(plugin_host.manager.get_plugin(item.name) for item in builtins)
        assert plugin_host.channel_classes == {"log": LogChannel, "database": DatabaseChannel}
        assert plugin_host.broken == []

    def test_builtin_filters_are_asked_in_declared_order(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """With three built-in filter modules in a package, they are asked in the order
        their ORDER says, not in the order of their names.
        """
        calls: list[str] = []
        package = tmp_path / "chaperone_test_builtins"
        package.mkdir()
        (package / "__init__.py").write_text('"""Three built-ins."""\n')
        names = {"zulu": 10, "alpha": 20, "mike": 30}
        for name, order in names.items():
            (package / f"{name}.py").write_text(
                "import chaperone\n"
                f"ORDER = {order}\n"
                "CALLS = []\n"
                "@chaperone.hookimpl\n"
                "def chaperone_filter_alert(alert):\n"
                f"    CALLS.append({name!r})\n"
            )
        monkeypatch.syspath_prepend(str(tmp_path))
        monkeypatch.setattr(plugins_module, "BUILTIN_PACKAGE", package.name)
        for module in builtin_modules(package.name):
            module.CALLS = calls  # one list for the three
        plugin_host = host()
        result = plugin_host.hook.chaperone_filter_alert(
            alert=an_alert(), runtime=None, is_test=False
        )
        assert result is None
        assert calls == list(names)
        dotted = [f"{package.name}.{name}" for name in names]
        assert call_order(plugin_host, "chaperone_filter_alert") == dotted

    def test_a_builtin_without_an_order_is_refused(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """A module of the built-in package that declares no ORDER is a PluginError
        naming it, so a new built-in cannot land with its place undecided.
        """
        package = tmp_path / "chaperone_test_unordered"
        package.mkdir()
        (package / "__init__.py").write_text('"""One built-in."""\n')
        (package / "loose.py").write_text('"""No ORDER here."""\n')
        monkeypatch.syspath_prepend(str(tmp_path))
        with pytest.raises(PluginError, match=r"chaperone_test_unordered\.loose"):
            builtin_modules(package.name)

    def test_a_plugin_filter_runs_before_the_builtins_unless_trylast(self) -> None:
        """A filter registered in code is asked after the open incidents' record and
        before the rate limit; one marked trylast after it.
        """

        class Late:
            @chaperone.hookimpl(trylast=True)
            def chaperone_filter_alert(self, alert: Alert) -> Verdict | None:
                return None

        plugin_host = host(("early", Recorder("early", [])), ("late", Late()))
        assert call_order(plugin_host, "chaperone_filter_alert") == [
            OPEN_INCIDENTS,
            "early",
            *BUILTIN_FILTERS,
            "late",
        ]

    def test_builtin_detectors_run_in_the_declared_order(self) -> None:
        """Jobs, schedules, queued events and thresholds first, then the maintenance
        windows that ended and the groups due.
        """
        assert call_order(host(), "chaperone_detect") == [
            "chaperone.builtin.job_detector",
            "chaperone.builtin.schedule_detector",
            "chaperone.builtin.queued_events",
            "chaperone.builtin.threshold_detector",
            "chaperone.builtin.maintenance_windows",
            GROUPING,
        ]

    @pytest.mark.parametrize(
        ("hook", "builtin"),
        [
            ("chaperone_alerts", "chaperone.builtin.alert_builder"),
            ("chaperone_alert_priority", "chaperone.builtin.priority_rules"),
            ("chaperone_route", "chaperone.builtin.routing"),
        ],
    )
    def test_a_plugin_answers_before_the_builtin(self, hook: str, builtin: str) -> None:
        """The alert builder, the priority rules and the routing are called after a
        plugin's answer (they are trylast).
        """

        class Answers:
            @chaperone.hookimpl
            def chaperone_alerts(self) -> None:
                return None

            @chaperone.hookimpl
            def chaperone_alert_priority(self) -> None:
                return None

            @chaperone.hookimpl
            def chaperone_route(self) -> None:
                return None

        plugin_host = host(("answers", Answers()))
        assert call_order(plugin_host, hook) == ["answers", builtin]

    @pytest.mark.parametrize(
        "name", ["metrics", "jobs", "queue", "alerts", "routing", "priority", "grouping"]
    )
    def test_a_plugin_named_as_a_builtin_was_loads(self, name: str) -> None:
        """A plugin taking one of the built-ins' short names of old loads beside them and
        its hooks are called.
        """
        calls: list[str] = []
        plugin_host = host((name, Recorder(name, calls)), disabled=BUILTIN_FILTERS)
        assert info(plugin_host, name).status == "ok"
        assert plugin_host.broken == []
        plugin_host.hook.chaperone_filter_alert(
            alert=an_alert(),
            runtime=types.SimpleNamespace(settings=chaperone.Settings()),
            is_test=True,
        )
        assert calls == [name]

    def test_builtin_filters_run_in_the_designed_order(self) -> None:
        """The open incidents' record first (it sees every alert), then maintenance (a
        suppressed alert uses up no window), escalation and the rate limit, grouping last.
        """
        assert call_order(host(), "chaperone_filter_alert") == [OPEN_INCIDENTS, *BUILTIN_FILTERS]


class TestDisabled:
    def test_disabled_names_are_not_registered(self) -> None:
        """Names in ``disabled`` (case and spaces aside), built-in or not, are listed as
        disabled and never registered: no filter, no channel.
        """
        calls: list[str] = []
        plugin_host = host(
            ("mine", Recorder("mine", calls)),
            ("theirs", Channels(channel_class("theirs"))),
            disabled=(
                " Chaperone.Builtin.RateLimit_Filter ",
                LOG,
                "theirs",
                OPEN_INCIDENTS,
                *BUILTIN_FILTERS,
            ),
        )
        for name in ("chaperone.builtin.ratelimit_filter", OPEN_INCIDENTS, LOG, "theirs"):
            assert info(plugin_host, name).status == "disabled"
            assert plugin_host.manager.get_plugin(name) is None
        assert info(plugin_host, "mine").status == "ok"
        # grouping cannot be disabled: it stays, and the configuration check refuses it
        assert call_order(plugin_host, "chaperone_filter_alert") == ["mine", GROUPING]
        assert set(plugin_host.channel_classes) == {"database"}
        assert info(plugin_host, LOG).to_dict()["status"] == "disabled"
        assert info(plugin_host, LOG).channels == ["log"]
        assert plugin_host.owner_of("log") is info(plugin_host, LOG)


class TestBrokenPlugins:
    def test_raising_in_register_channels_breaks_only_that_plugin(self) -> None:
        """A plugin raising while registering channels is marked broken with a masked
        error; the channels of plugins before and after it still register.
        """
        secret = Secret("register-secret-31337")

        class Explodes:
            @chaperone.hookimpl
            def chaperone_register_channels(self, register: Any) -> None:
                register(channel_class("half"))
                raise RuntimeError(f"no config for {secret.reveal()}")

        plugin_host = host(
            ("before", Channels(channel_class("before"))),
            ("explodes", Explodes()),
            ("after", Channels(channel_class("after"))),
        )
        broken = info(plugin_host, "explodes")
        assert broken.status == "broken"
        assert broken.error is not None
        assert "RuntimeError" in broken.error
        assert secret.reveal() not in broken.error
        assert {"log", "database", "before", "after"} <= set(plugin_host.channel_classes)
        assert info(plugin_host, "before").status == "ok"
        assert info(plugin_host, "after").status == "ok"
        assert [item.name for item in plugin_host.broken] == ["explodes"]

    def test_unknown_hook_breaks_and_unregisters_the_plugin(self) -> None:
        """A plugin implementing a hook that does not exist is broken and unregistered, so
        its other hooks are never called; plugins after it load normally.
        """
        calls: list[str] = []

        class Typo:
            @chaperone.hookimpl
            def chaperone_filter_alert(self, alert: Alert) -> Verdict | None:
                calls.append("typo")
                return Verdict.suppress("should never run")

            @chaperone.hookimpl
            def chaperone_fliter_alert(self, alert: Alert) -> None:
                calls.append("typo")

        plugin_host = host(
            ("typo", Typo()), ("fine", Recorder("fine", calls)), disabled=BUILTIN_FILTERS
        )
        typo = info(plugin_host, "typo")
        assert typo.status == "broken"
        assert typo.error is not None
        assert "chaperone_fliter_alert" in typo.error
        assert plugin_host.manager.get_plugin("typo") is None
        assert info(plugin_host, "fine").status == "ok"
        # grouping cannot be disabled: it stays, reads the settings, lets a test alert pass
        runtime = types.SimpleNamespace(settings=chaperone.Settings())
        verdict = plugin_host.hook.chaperone_filter_alert(
            alert=an_alert(), runtime=runtime, is_test=True
        )
        assert verdict is None
        assert calls == ["fine"]

    def test_argument_not_in_the_spec_breaks_the_plugin(self) -> None:
        """An implementation asking for an argument the spec does not offer is broken."""

        class Greedy:
            @chaperone.hookimpl
            def chaperone_filter_alert(self, alert: Alert, mood: str) -> Verdict | None:
                return None

        plugin_host = host(("greedy", Greedy()))
        assert info(plugin_host, "greedy").status == "broken"
        assert plugin_host.manager.get_plugin("greedy") is None

    def test_duplicate_channel_name_breaks_the_second_plugin(self) -> None:
        """Two plugins registering the same channel name: the first keeps it, the second
        is broken with an error naming both.
        """
        first_class, second_class = channel_class("pager"), channel_class("pager")
        plugin_host = host(("first", Channels(first_class)), ("second", Channels(second_class)))
        assert plugin_host.channel_classes["pager"] is first_class
        provider = plugin_host.provider_of("pager")
        assert provider is not None
        assert provider.name == "first"
        second = info(plugin_host, "second")
        assert second.status == "broken"
        assert second.error is not None
        assert "pager" in second.error
        assert "first" in second.error
        assert second.channels == []

    def test_shadowing_a_builtin_channel_breaks_the_plugin(self) -> None:
        """A plugin registering ``log`` again cannot replace the built-in channel."""
        plugin_host = host(("impostor", Channels(channel_class("log"))))
        assert plugin_host.channel_classes["log"] is LogChannel
        assert info(plugin_host, "impostor").status == "broken"

    def test_a_plugin_named_like_a_builtin_is_broken(self) -> None:
        """A plugin taking a built-in's dotted name is refused; the built-in keeps its
        channel.
        """
        plugin_host = host((LOG, Channels(channel_class("other"))))
        impostor = plugin_host.plugins[-1]
        assert impostor.status == "broken"
        assert "other" not in plugin_host.channel_classes
        assert plugin_host.channel_classes["log"] is LogChannel
        provider = plugin_host.provider_of("log")
        assert provider is not None
        assert provider.builtin

    @pytest.mark.parametrize("registered", [object(), str, channel_class("")])
    def test_registering_a_non_channel_breaks_the_plugin(self, registered: object) -> None:
        """register() takes only named Channel subclasses; anything else breaks the plugin
        with a PluginError.
        """
        plugin_host = host(("odd", Channels(registered)))
        odd = info(plugin_host, "odd")
        assert odd.status == "broken"
        assert odd.error is not None
        assert odd.error.startswith("PluginError")

    def test_broken_entry_point_is_listed_not_fatal(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """An entry point that cannot be imported is listed as broken; a good entry point
        beside it loads and registers its channel.
        """
        module = fake_module("chaperone_test_good_plugin")

        @chaperone.hookimpl
        def chaperone_register_channels(register: Any) -> None:
            register(channel_class("good"))

        module.chaperone_register_channels = chaperone_register_channels  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, module.__name__, module)
        points = [
            importlib.metadata.EntryPoint(
                name="ghost", value="chaperone_test_no_such_module", group="chaperone"
            ),
            importlib.metadata.EntryPoint(
                name="good", value="chaperone_test_good_plugin", group="chaperone"
            ),
        ]

        def entry_points(**selection: Any) -> list[importlib.metadata.EntryPoint]:
            assert selection == {"group": "chaperone"}
            return points

        monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
        plugin_host = PluginHost()
        ghost = info(plugin_host, "ghost")
        assert ghost.status == "broken"
        assert ghost.error is not None
        assert "ModuleNotFoundError" in ghost.error
        assert not ghost.builtin
        assert info(plugin_host, "good").status == "ok"
        assert "good" in plugin_host.channel_classes
        assert ghost.to_dict()["status"] == "broken"


class TestIsolatedHooks:
    def test_a_raising_implementation_does_not_stop_the_others(self) -> None:
        """An isolated hook called through pluggy calls every implementation, latest
        registered first, and one raising neither propagates nor skips the rest.
        """
        calls: list[str] = []
        plugin_host = host(
            ("first", Recorder("first", calls)),
            ("second", Recorder("second", calls, fail=True)),
            ("third", Recorder("third", calls)),
            disabled=(DATABASE,),
        )
        plugin_host.hook.chaperone_delivered(
            alert=an_alert(),
            destination=Destination(channel="log"),
            outcome=Outcome.delivered(),
            runtime=None,
        )
        assert calls == ["third", "second", "first"]

    def test_an_implementation_may_take_fewer_arguments(self) -> None:
        """Implementations naming only some of the spec's arguments get just those, on
        isolated hooks (guarded) and firstresult ones alike.
        """
        seen: list[Any] = []

        class Frugal:
            @chaperone.hookimpl
            def chaperone_delivered(self, outcome: Outcome) -> None:
                seen.append(outcome)

            @chaperone.hookimpl
            def chaperone_event(self) -> None:
                seen.append("event")

            @chaperone.hookimpl
            def chaperone_filter_alert(self, is_test: bool) -> Verdict | None:
                return Verdict.send("test") if is_test else None

        plugin_host = host(("frugal", Frugal()), disabled=(DATABASE,))
        outcome = Outcome.delivered("yes")
        plugin_host.hook.chaperone_delivered(
            alert=an_alert(),
            destination=Destination(channel="log"),
            outcome=outcome,
            runtime=None,
        )
        plugin_host.hook.chaperone_event(event=None, runtime=None)
        verdict = plugin_host.hook.chaperone_filter_alert(
            alert=an_alert(), runtime=None, is_test=True
        )
        assert seen == [outcome, "event"]
        assert verdict == Verdict.send("test")
        assert info(plugin_host, "frugal").status == "ok"

    def test_register_channels_with_fewer_arguments(self) -> None:
        """A chaperone_register_channels taking no argument is called and breaks nothing."""
        called: list[bool] = []

        class NoArgs:
            @chaperone.hookimpl
            def chaperone_register_channels(self) -> None:
                called.append(True)

        plugin_host = host(("noargs", NoArgs()))
        assert called == [True]
        assert info(plugin_host, "noargs").status == "ok"


class TestPluginInfo:
    def test_plugins_registered_in_code_are_described(self) -> None:
        """A plugin from ``extra`` is listed after the built-ins with its channels."""
        plugin_host = host(("mine", Channels(channel_class("mine-channel"))))
        mine = plugin_host.plugins[-1]
        assert mine.to_dict() == {
            "name": "mine",
            "module": "Channels",
            "distribution": "(registered in code)",
            "version": "",
            "builtin": False,
            "channels": ["mine-channel"],
            "status": "ok",
            "error": None,
        }
