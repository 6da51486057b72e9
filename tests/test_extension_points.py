"""The extension points, in one process: plugin events registered per plugin host, plugin
settings read and validated like the core's, stores found by URL scheme, and plugin
commands collected with their clashes refused.

The store tests use the fixture plugin chaperone-testextend's ``memo2://`` scheme.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import click
import pytest
from hypothesis import given
from hypothesis import strategies as st

import chaperone
from chaperone import Chaperone, ConfigError, Event, JobStuck, ManualClock, PluginHost, Settings
from chaperone._event_codec import decode_event, encode_event
from chaperone._secrets import MASKER
from chaperone.cli import COMMANDS
from chaperone.config import load_settings, read_plugin_settings
from chaperone.store import MemoryStore, SQLiteStore, open_resilient_store, open_store
from chaperone.supervision import _keys
from helpers.cli import require_fixture_plugins

AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


@attrs.frozen(kw_only=True)
class CacheWarmed(Event):
    """A plugin's own event."""

    cache: str
    took: timedelta


@attrs.frozen(kw_only=True)
class NotAnEvent:
    """An attrs class that is no Event."""

    cache: str


class Events:
    """A plugin that registers the given classes as its events."""

    def __init__(self, *classes: Any) -> None:
        self.classes = classes

    @chaperone.hookimpl
    def chaperone_register_events(self, register: Any) -> None:
        for item in self.classes:
            register(item)


def host(*plugins: tuple[str, object], disabled: tuple[str, ...] = ()) -> PluginHost:
    """A host with the built-ins and ``plugins`` only."""
    return PluginHost(entry_points=False, extra=list(plugins), disabled=disabled)


def status(plugin_host: PluginHost, name: str) -> tuple[str, str | None]:
    [info] = [info for info in plugin_host.plugins if info.name == name]
    return info.status, info.error


class TestPluginEvents:
    def test_a_registered_event_is_decoded_by_the_host_that_registered_it(self) -> None:
        """The host's event classes decode the plugin's event; the built-in classes alone
        do not."""
        plugin_host = host(("cache", Events(CacheWarmed)))
        event = CacheWarmed(cache="users", took=timedelta(seconds=3), occurred_at=AT)
        text = encode_event(event)
        assert decode_event(text, plugin_host.event_classes) == event
        assert plugin_host.event_classes.owner_of("CacheWarmed") == "cache"
        with pytest.raises(ValueError, match="unknown event class 'CacheWarmed'"):
            decode_event(text)

    @pytest.mark.parametrize(
        ("registered", "complaint"),
        [
            (NotAnEvent, "takes an attrs subclass of chaperone.Event"),
            ("CacheWarmed", "takes an attrs subclass of chaperone.Event"),
            (int, "takes an attrs subclass of chaperone.Event"),
            (attrs.frozen(type("JobStuck", (Event,), {})), "'JobStuck' is a built-in event's"),
        ],
        ids=["not an event", "a name", "a type", "a built-in's name"],
    )
    def test_a_refused_class_breaks_only_its_plugin(self, registered: Any, complaint: str) -> None:
        """A class that is not an attrs Event, or takes a built-in event's name, marks its
        plugin broken with an error naming it; another plugin's event still registers."""
        plugin_host = host(("bad", Events(registered)), ("good", Events(CacheWarmed)))
        state, error = status(plugin_host, "bad")
        assert state == "broken"
        assert error is not None
        assert "plugin 'bad'" in error
        assert complaint in error
        assert status(plugin_host, "good") == ("ok", None)
        assert "CacheWarmed" in plugin_host.event_classes

    def test_a_name_another_plugin_took_is_refused(self) -> None:
        """Two plugins registering event classes of one name: the second is broken."""
        other = attrs.frozen(kw_only=True)(type("CacheWarmed", (Event,), {"__annotations__": {}}))
        plugin_host = host(("first", Events(CacheWarmed)), ("second", Events(other)))
        assert status(plugin_host, "first") == ("ok", None)
        state, error = status(plugin_host, "second")
        assert state == "broken"
        assert "already registered by plugin 'first'" in (error or "")
        assert plugin_host.event_classes["CacheWarmed"] is CacheWarmed

    def test_built_in_events_decode_without_a_host(self) -> None:
        """The built-in classes decode without any host (a job side that builds none)."""
        event = JobStuck(
            supervision_id="s", job_class="j", stuck_duration=timedelta(1), occurred_at=AT
        )
        assert decode_event(encode_event(event)) == event

    def test_a_disabled_plugin_registers_nothing(self) -> None:
        """A disabled plugin's events are not decoded."""
        plugin_host = host(("cache", Events(CacheWarmed)), disabled=("cache",))
        assert "CacheWarmed" not in plugin_host.event_classes

    def test_the_monitor_delivers_a_queued_plugin_event(self) -> None:
        """A plugin event in the store's queue becomes the alert the plugin's
        ``chaperone_alerts`` builds, delivered to the database channel."""

        class CachePlugin(Events):
            @chaperone.hookimpl
            def chaperone_alerts(self, event: Event) -> list[chaperone.Alert] | None:
                if not isinstance(event, CacheWarmed):
                    return None
                assert event.occurred_at is not None
                return [
                    chaperone.Alert(
                        type="cache_warmed",
                        key=event.cache,
                        headline="Cache Warmed",
                        title=f"Cache Warmed: {event.cache}",
                        summary="The cache is warm.",
                        severity=chaperone.Severity.INFO,
                        occurred_at=event.occurred_at,
                    )
                ]

        clock = ManualClock(AT)
        store = MemoryStore(clock)
        store.push(_keys.EVENTS_QUEUE, encode_event(CacheWarmed(cache="users", took=timedelta())))
        settings = Settings(channels=("database",))
        plugins = host(("cache", CachePlugin(CacheWarmed)))
        with Chaperone(settings, clock=clock, store=store, plugins=plugins) as runtime:
            [report] = chaperone.Monitor(runtime).tick()
        [sent] = report.alerts
        assert (sent.alert.type, sent.alert.key) == ("cache_warmed", "users")
        assert sent.delivered


@attrs.frozen(kw_only=True)
class WarmerSettings:
    """A plugin's settings, one of each kind the loader reads from text."""

    caches: tuple[str, ...] = ("users",)
    every: timedelta = timedelta(minutes=5)
    dry_run: bool = False
    ratio: float = attrs.field(default=0.5, validator=attrs.validators.le(1.0))
    workers: int = 2
    password: str | None = attrs.field(default=None, metadata={"secret": True})


@attrs.frozen(kw_only=True)
class NeedsUrl:
    """A plugin's settings with a required field."""

    url: str


class SettingsPlugin:
    """A plugin that declares ``settings_class``."""

    def __init__(self, settings_class: Any) -> None:
        self.settings_class = settings_class

    @chaperone.hookimpl
    def chaperone_register_settings(self, register: Any) -> None:
        register(self.settings_class)


def settings_in(
    folder: Path, toml: str = "", environ: dict[str, str] | None = None, dotenv: str = ""
) -> Settings:
    """Settings loaded from ``folder`` with the given file, ``.env`` and environment."""
    if toml:
        (folder / "chaperone.toml").write_text(toml, encoding="utf-8")
    if dotenv:
        (folder / ".env").write_text(dotenv, encoding="utf-8")
    return load_settings(environ or {}, folder)


def runtime_for(settings: Settings, *plugins: tuple[str, object]) -> Chaperone:
    clock = ManualClock(AT)
    return Chaperone(settings, clock=clock, store=MemoryStore(clock), plugins=host(*plugins))


def problems_of(settings: Settings, *plugins: tuple[str, object]) -> list[str]:
    """Every problem a validated runtime finds, as text."""
    with pytest.raises(ConfigError) as caught:
        runtime_for(settings, *plugins).close()
    return [str(problem) for problem in caught.value.problems]


class TestPluginSettings:
    def test_defaults_when_nothing_is_set(self, tmp_path: Path) -> None:
        """With no table and no variable, the plugin reads its class's defaults."""
        with runtime_for(settings_in(tmp_path), ("warmer", SettingsPlugin(WarmerSettings))) as rt:
            assert rt.settings.plugin("warmer") == WarmerSettings()

    def test_each_kind_is_read_from_the_environment(self, tmp_path: Path) -> None:
        """Text from variables becomes a tuple, a duration, a boolean, numbers."""
        environ = {
            "CHAPERONE_WARMER_CACHES": "users, orders",
            "CHAPERONE_WARMER_EVERY": "1h",
            "CHAPERONE_WARMER_DRY_RUN": "yes",
            "CHAPERONE_WARMER_RATIO": "0.25",
            "CHAPERONE_WARMER_WORKERS": "8",
        }
        settings = settings_in(tmp_path, environ=environ)
        with runtime_for(settings, ("warmer", SettingsPlugin(WarmerSettings))) as runtime:
            assert runtime.settings.plugin("warmer") == WarmerSettings(
                caches=("users", "orders"),
                every=timedelta(hours=1),
                dry_run=True,
                ratio=0.25,
                workers=8,
            )

    @pytest.mark.parametrize(
        ("toml", "dotenv", "environ", "expected"),
        [
            ("workers = 3", "", {}, 3),
            ("workers = 3", "CHAPERONE_WARMER_WORKERS=4", {}, 4),
            ("workers = 3", "CHAPERONE_WARMER_WORKERS=4", {"CHAPERONE_WARMER_WORKERS": "5"}, 5),
            ("", "CHAPERONE_WARMER_WORKERS=4", {"CHAPERONE_WARMER_WORKERS": ""}, 4),
        ],
        ids=["file", ".env over file", "environment over .env", "empty counts as unset"],
    )
    def test_precedence_is_the_cores(
        self, tmp_path: Path, toml: str, dotenv: str, environ: dict[str, str], expected: int
    ) -> None:
        """defaults < TOML < .env < environment, an empty variable counting as unset."""
        settings = settings_in(tmp_path, f"[plugins.warmer]\n{toml}\n", environ, dotenv)
        with runtime_for(settings, ("warmer", SettingsPlugin(WarmerSettings))) as runtime:
            assert runtime.settings.plugin("warmer").workers == expected

    def test_pyproject_tool_table_is_read(self, tmp_path: Path) -> None:
        """``[tool.chaperone.plugins.warmer]`` in pyproject.toml sets the plugin's values."""
        (tmp_path / "pyproject.toml").write_text(
            "[tool.chaperone.plugins.warmer]\nworkers = 6\n", encoding="utf-8"
        )
        settings = load_settings({}, tmp_path)
        with runtime_for(settings, ("warmer", SettingsPlugin(WarmerSettings))) as runtime:
            assert runtime.settings.plugin("warmer").workers == 6

    @pytest.mark.parametrize(
        ("toml", "environ", "expected"),
        [
            ("workers = 1.5", {}, "plugins.warmer.workers (from {file}): expected a whole number"),
            ("dry_run = 2", {}, "plugins.warmer.dry_run (from {file}): expected true or false"),
            ('every = "soon"', {}, "plugins.warmer.every (from {file}): "),
            ("caches = [1]", {}, "plugins.warmer.caches (from {file}): expected an array of"),
            ("", {"CHAPERONE_WARMER_RATIO": "x"}, "CHAPERONE_WARMER_RATIO (from environment): "),
            ("ratio = 2.0", {}, "plugins.warmer (from {file}): 'ratio' must be <= 1.0"),
            ("workerz = 1", {}, "plugins.warmer.workerz (from {file}): plugin 'warmer' has no "),
        ],
    )
    def test_a_bad_value_is_one_problem_naming_setting_and_source(
        self, tmp_path: Path, toml: str, environ: dict[str, str], expected: str
    ) -> None:
        """A wrong type, a value the class's validator refuses, or a key the class lacks
        is one one-line problem naming the setting and where it came from."""
        settings = settings_in(tmp_path, f"[plugins.warmer]\n{toml}\n", environ)
        [problem] = problems_of(settings, ("warmer", SettingsPlugin(WarmerSettings)))
        assert problem.startswith(expected.format(file=tmp_path / "chaperone.toml"))
        assert "\n" not in problem

    def test_a_bad_file_value_is_found_under_a_good_variable(self, tmp_path: Path) -> None:
        """As for the core settings, every layer is checked."""
        settings = settings_in(
            tmp_path, "[plugins.warmer]\nworkers = 'many'\n", {"CHAPERONE_WARMER_WORKERS": "2"}
        )
        [problem] = problems_of(settings, ("warmer", SettingsPlugin(WarmerSettings)))
        assert problem.startswith("plugins.warmer.workers (from ")

    def test_a_required_field_must_be_set(self, tmp_path: Path) -> None:
        """A field without a default and unset is a problem naming its variable."""
        [problem] = problems_of(settings_in(tmp_path), ("hooks", SettingsPlugin(NeedsUrl)))
        assert (
            problem == "plugins.hooks.url (from default): required: set it or CHAPERONE_HOOKS_URL"
        )

    def test_tables_of_unknown_or_settingless_plugins(self, tmp_path: Path) -> None:
        """A table for no installed plugin, or for one without settings, is a problem; a
        disabled plugin's table may stay."""
        toml = (
            "[plugins]\ndisable = ['off']\n[plugins.warmr]\nworkers = 1\n"
            "[plugins.plain]\nx = 1\n[plugins.off]\nworkers = 1\n"
        )
        settings = settings_in(tmp_path, toml)
        found = problems_of(
            settings,
            ("warmer", SettingsPlugin(WarmerSettings)),
            ("plain", object()),
            ("off", SettingsPlugin(WarmerSettings)),
        )
        assert sorted(problem.split(" (from")[0] for problem in found) == [
            "plugins.plain",
            "plugins.warmr",
        ]
        assert any("did you mean warmer?" in problem for problem in found)

    def test_a_secret_is_masked_in_problems_and_logs(self, tmp_path: Path) -> None:
        """A secret field's value is added to the masker as soon as it is read."""
        secret = "pw-7f3a9c1e-extension"  # noqa: S105 - made up for the test
        settings = settings_in(tmp_path, environ={"CHAPERONE_WARMER_PASSWORD": secret})
        with runtime_for(settings, ("warmer", SettingsPlugin(WarmerSettings))) as runtime:
            assert runtime.settings.plugin("warmer").password == secret
        assert secret not in MASKER.mask(f"connecting with {secret}")

    def test_a_plugin_without_settings_has_none(self, tmp_path: Path) -> None:
        """``settings.plugin`` of a plugin that declared none is a KeyError naming it."""
        with (
            runtime_for(settings_in(tmp_path)) as runtime,
            pytest.raises(KeyError, match="no validated settings for plugin 'nothing'"),
        ):
            runtime.settings.plugin("nothing")

    @pytest.mark.parametrize("declared", [dict, "WarmerSettings"], ids=["not attrs", "a name"])
    def test_registering_what_is_not_an_attrs_class_breaks_the_plugin(self, declared: Any) -> None:
        """``register`` takes an attrs class; anything else marks the plugin broken."""
        plugin_host = host(("warmer", SettingsPlugin(declared)))
        state, error = status(plugin_host, "warmer")
        assert state == "broken"
        assert "register() takes an attrs class" in (error or "")
        assert plugin_host.settings_classes == {}


TEXT_ITEM = st.text(
    st.characters(codec="utf-8", exclude_characters=","), min_size=1, max_size=12
).filter(lambda item: item.strip() == item)
"""One item of a comma-separated list: no comma, no space at its ends."""


class TestPluginSettingsProperties:
    @given(
        workers=st.integers(min_value=-(2**63), max_value=2**63 - 1),
        ratio=st.floats(min_value=0, max_value=1),
        dry_run=st.booleans(),
        seconds=st.integers(min_value=0, max_value=10**6),
        caches=st.lists(TEXT_ITEM, min_size=1, max_size=4),
    )
    def test_values_written_as_variables_read_back(
        self, workers: int, ratio: float, dry_run: bool, seconds: int, caches: list[str]
    ) -> None:
        """Any value of each kind, written as the text of its variable, is read back as
        the value, from the environment, with its source."""
        environ = {
            "CHAPERONE_WARMER_WORKERS": str(workers),
            "CHAPERONE_WARMER_RATIO": repr(ratio),
            "CHAPERONE_WARMER_DRY_RUN": str(dry_run).lower(),
            "CHAPERONE_WARMER_EVERY": str(seconds),
            "CHAPERONE_WARMER_CACHES": ",".join(caches),
        }
        settings = Settings(environ=environ)
        instances, rows, problems = read_plugin_settings(settings, {"warmer": WarmerSettings})
        assert problems == []
        assert instances["warmer"] == WarmerSettings(
            workers=workers,
            ratio=ratio,
            dry_run=dry_run,
            every=timedelta(seconds=seconds),
            caches=tuple(caches),
        )
        sources = {row.name: row.source for row in rows if row.env in environ}
        assert set(sources.values()) == {"environment"}
        assert len(sources) == len(environ)


class TestStoreSchemes:
    @pytest.fixture(autouse=True)
    def _fixture_plugins(self) -> None:
        require_fixture_plugins()

    def test_a_plugin_scheme_opens_the_plugins_store(self, tmp_path: Path) -> None:
        """``memo2:///PATH`` (the fixture plugin chaperone-testextend's scheme) opens its
        store, which keeps the URL it was given."""
        url = f"memo2:///{tmp_path / 'store.db'}"
        store = open_store(url, ManualClock(AT))
        try:
            assert isinstance(store, SQLiteStore)
            assert store.url == url
            store.set("k", "v")
            assert store.get("k") == "v"
        finally:
            store.close()

    def test_a_plugin_scheme_works_behind_the_resilient_store(self, tmp_path: Path) -> None:
        """``open_resilient_store`` opens any installed scheme."""
        store = open_resilient_store(f"memo2:///{tmp_path / 'store.db'}", ManualClock(AT))
        try:
            store.set("k", "v")
            assert store.get("k") == "v"
        finally:
            store.close()

    def test_a_plugin_scheme_reports_its_own_url_problems(self) -> None:
        """The opener's ConfigError names the setting and source the core passed."""
        with pytest.raises(ConfigError) as caught:
            open_store("memo2://relative", ManualClock(AT), key="K", source="env")
        [problem] = caught.value.problems
        assert (problem.key, problem.source) == ("K", "env")


class Commands:
    """A plugin that adds a command for each name."""

    def __init__(self, *names: str) -> None:
        self.names = names

    @chaperone.hookimpl
    def chaperone_register_commands(self, cli: click.Group) -> None:
        for name in self.names:
            cli.add_command(click.Command(name, callback=lambda: None))


class Raising:
    """A plugin whose command hook raises."""

    @chaperone.hookimpl
    def chaperone_register_commands(self, cli: click.Group) -> None:
        raise RuntimeError("no commands today")


class TestPluginCommands:
    def test_commands_are_collected_by_name(self) -> None:
        """Each plugin's commands are offered under their names."""
        plugin_host = host(("a", Commands("warm", "cool")), ("b", Commands("sweep")))
        assert sorted(plugin_host.commands(COMMANDS)) == ["cool", "sweep", "warm"]

    def test_a_clash_refuses_every_command_of_the_plugin(self) -> None:
        """A command named like a built-in, or like another plugin's, refuses all of its
        plugin's commands and marks it broken; the others keep theirs."""
        plugin_host = host(
            ("first", Commands("warm")),
            ("builtin-clash", Commands("cool", "jobs")),
            ("plugin-clash", Commands("warm")),
            ("raising", Raising()),
        )
        assert list(plugin_host.commands(COMMANDS)) == ["warm"]
        assert "'jobs' is a built-in command's name" in (
            status(plugin_host, "builtin-clash")[1] or ""
        )
        assert "already added by plugin 'first'" in (status(plugin_host, "plugin-clash")[1] or "")
        assert "no commands today" in (status(plugin_host, "raising")[1] or "")
        assert status(plugin_host, "first") == ("ok", None)

    def test_commands_are_asked_for_once(self) -> None:
        """The hook runs on the first call only; later calls return the same commands."""
        calls: list[str] = []

        class Counting:
            @chaperone.hookimpl
            def chaperone_register_commands(self, cli: click.Group) -> None:
                calls.append("asked")

        plugin_host = host(("counting", Counting()))
        assert plugin_host.commands(COMMANDS) is plugin_host.commands(COMMANDS)
        assert calls == ["asked"]
