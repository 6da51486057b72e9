"""The Chaperone: start-up validation, dispatch from any thread or loop, and closing."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any, Self

import pytest

import chaperone
from chaperone import (
    Alert,
    Channel,
    ChannelSettings,
    Chaperone,
    ConfigError,
    DispatchReport,
    JobStuck,
    ManualClock,
    Outcome,
    PluginHost,
    SendContext,
    Settings,
    StoreError,
    UnknownChannelError,
    VerdictKind,
)
from chaperone import _chaperone as runtime_module
from chaperone.builtin.database_channel import read_history
from chaperone.store import MemoryStore, ResilientStore, SQLiteStore, Store, StoreState
from helpers.runtime import make_runtime

# -------------------------------------------------------------------------------------
# Helpers
# -------------------------------------------------------------------------------------


class Needy(Channel):
    """A channel that needs a ``token`` starting with ``tok-``."""

    name = "needy"

    @classmethod
    def from_settings(cls, settings: ChannelSettings) -> Self:
        token = str(settings.require("token"))
        if not token.startswith("tok-"):
            raise settings.problem("token", "must start with tok-")
        return cls()

    async def send(self, alert: Alert, context: SendContext) -> Outcome:
        return Outcome.delivered()


class Picky(Needy):
    """Another channel with the same needs under another name."""

    name = "picky"


class Sink:
    """A channel factory recording alerts (thread-safe) and the channels closed."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sent: list[tuple[str, Alert]] = []
        self.closed: list[str] = []

    def channel(self, name: str, *, fail_close: bool = False) -> type[Channel]:
        """A channel class called ``name`` that records its alerts and its aclose."""
        sink = self

        class Recording(Channel):
            @classmethod
            def from_settings(cls, settings: ChannelSettings) -> Self:
                return cls()

            async def send(self, alert: Alert, context: SendContext) -> Outcome:
                with sink.lock:
                    sink.sent.append((name, alert))
                return Outcome.delivered()

            async def aclose(self) -> None:
                sink.closed.append(name)
                if fail_close:
                    raise RuntimeError("close failed")

        Recording.name = name
        return Recording


class Channels:
    """A plugin that registers the given channel classes."""

    def __init__(self, *classes: type[Channel]) -> None:
        self.classes = classes

    @chaperone.hookimpl
    def chaperone_register_channels(self, register: Any) -> None:
        for channel_class in self.classes:
            register(channel_class)


def stuck(supervision_id: str = "sup-1") -> JobStuck:
    """A JobStuck event."""
    return JobStuck(
        supervision_id=supervision_id,
        job_class="App\\Jobs\\ImportFeed",
        stuck_duration=timedelta(minutes=10),
    )


def delivered(report: DispatchReport) -> bool:
    """Whether the event's single alert was delivered everywhere."""
    return len(report.alerts) == 1 and report.alerts[0].delivered


# -------------------------------------------------------------------------------------
# Tests
# -------------------------------------------------------------------------------------


class TestCheck:
    def test_unknown_channel_names_the_package_and_installed_channels(self) -> None:
        """A configured channel no plugin provides fails start-up, saying what to install
        and which channels are installed.
        """
        with pytest.raises(UnknownChannelError) as caught:
            make_runtime(channels=("log", "slack"))
        message = str(caught.value)
        assert "pip install chaperone-slack" in message
        assert "installed channels: database, log" in message
        (problem,) = caught.value.problems
        assert problem.key == "CHAPERONE_ALERT_CHANNELS"
        assert problem.source == "default"

    def test_unknown_channel_names_where_the_setting_came_from(self) -> None:
        """The problem's source is where CHAPERONE_ALERT_CHANNELS was set."""
        with pytest.raises(UnknownChannelError) as caught:
            make_runtime(channels=("nosuch",), sources={"alerting.channels": ".env file /a/.env"})
        assert caught.value.problems[0].source == ".env file /a/.env"

    def test_check_with_validation_deferred(self) -> None:
        """With ``validate=False`` the runtime builds, and ``check()`` raises later."""
        with (
            make_runtime(channels=("nosuch",), validate=False) as runtime,
            pytest.raises(UnknownChannelError, match="chaperone-nosuch"),
        ):
            runtime.check()

    def test_broken_plugin_is_named_instead_of_install_advice(self) -> None:
        """When the plugin named like the channel is installed but broken, the error says
        so rather than advising an install.
        """

        class Broken:
            @chaperone.hookimpl
            def chaperone_register_channels(self, register: Any) -> None:
                raise RuntimeError("missing dependency")

        clock = ManualClock()
        plugins = PluginHost(entry_points=False, extra=[("pager", Broken())])
        with pytest.raises(UnknownChannelError) as caught:
            Chaperone(
                Settings(channels=("pager",)),
                clock=clock,
                store=MemoryStore(clock),
                plugins=plugins,
            )
        assert "installed but broken" in str(caught.value)
        assert "missing dependency" in str(caught.value)

    def test_missing_channel_setting_names_its_variable(self) -> None:
        """A channel whose required setting is unset fails start-up naming
        CHAPERONE_<NAME>_<KEY>.
        """
        with pytest.raises(ConfigError) as caught:
            make_runtime(Channels(Needy), channels=("needy",))
        assert not isinstance(caught.value, UnknownChannelError)
        (problem,) = caught.value.problems
        assert problem.key == "CHAPERONE_NEEDY_TOKEN"
        assert problem.source == "not set"
        assert "is required" in problem.message

    def test_bad_channel_setting_names_variable_and_source_not_value(self) -> None:
        """A malformed channel setting names its variable and the file it came from,
        never its value.
        """
        environ = {"CHAPERONE_NEEDY_TOKEN": "hunter2-not-a-token"}
        sources = {"CHAPERONE_NEEDY_TOKEN": ".env file /srv/app/.env"}
        with pytest.raises(ConfigError) as caught:
            make_runtime(
                Channels(Needy), channels=("needy",), environ=environ, environ_sources=sources
            )
        (problem,) = caught.value.problems
        assert problem.key == "CHAPERONE_NEEDY_TOKEN"
        assert problem.source == ".env file /srv/app/.env"
        assert "hunter2" not in str(caught.value)

    def test_toml_channel_setting_names_its_table_key(self) -> None:
        """A bad value from ``[channels.needy]`` is named by its TOML key and file."""
        with pytest.raises(ConfigError) as caught:
            make_runtime(
                Channels(Needy),
                channels=("needy",),
                channel_sections={"needy": {"token": "wrong"}},
                config_file="/srv/app/chaperone.toml",
            )
        (problem,) = caught.value.problems
        assert problem.key == "channels.needy.token"
        assert problem.source == "/srv/app/chaperone.toml"

    def test_every_problem_is_collected(self) -> None:
        """Two misconfigured channels and an unknown one: one error lists all three."""
        with pytest.raises(UnknownChannelError) as caught:
            make_runtime(
                Channels(Needy, Picky),
                channels=("needy", "nosuch", "picky"),
                environ={"CHAPERONE_PICKY_TOKEN": "bad"},
            )
        keys = sorted(problem.key for problem in caught.value.problems)
        assert keys == [
            "CHAPERONE_ALERT_CHANNELS",
            "CHAPERONE_NEEDY_TOKEN",
            "CHAPERONE_PICKY_TOKEN",
        ]

    def test_good_channel_settings_pass(self) -> None:
        """A channel with valid settings builds at start-up."""
        with make_runtime(
            Channels(Needy), channels=("needy",), environ={"CHAPERONE_NEEDY_TOKEN": "tok-1"}
        ) as runtime:
            report = runtime.dispatch(stuck())
        assert delivered(report)

    def test_failed_start_up_closes_the_store_it_opened(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """When validation fails, a store the runtime opened itself is closed again."""
        opened: list[Store] = []
        real_open = runtime_module.open_resilient_store

        def spy(*args: Any, **kwargs: Any) -> ResilientStore:
            store = real_open(*args, **kwargs)
            opened.append(store)
            return store

        monkeypatch.setattr(runtime_module, "open_resilient_store", spy)
        settings = Settings(channels=("nosuch",), store_url=f"sqlite:///{tmp_path / 'c.db'}")
        with pytest.raises(UnknownChannelError):
            Chaperone(settings, clock=ManualClock(), plugins=PluginHost(entry_points=False))
        (store,) = opened
        with pytest.raises(StoreError):
            store.get("anything")


class TestDispatchFromAnywhere:
    def test_sync_dispatch(self) -> None:
        """Plain synchronous code dispatches and gets the report back."""
        sink = Sink()
        with make_runtime(Channels(sink.channel("alpha")), channels=("alpha",)) as runtime:
            report = runtime.dispatch(stuck())
        assert delivered(report)
        assert len(sink.sent) == 1

    def test_adispatch_from_another_event_loop(self) -> None:
        """Awaiting adispatch from the caller's own event loop works."""
        sink = Sink()
        with make_runtime(Channels(sink.channel("alpha")), channels=("alpha",)) as runtime:
            report = asyncio.run(runtime.adispatch(stuck()))
        assert delivered(report)
        assert len(sink.sent) == 1

    def test_sync_dispatch_inside_a_running_loop(self) -> None:
        """Sync dispatch called from a coroutine of another loop still completes."""
        sink = Sink()

        async def job(runtime: Chaperone) -> DispatchReport:
            return runtime.dispatch(stuck())

        with make_runtime(Channels(sink.channel("alpha")), channels=("alpha",)) as runtime:
            report = asyncio.run(job(runtime))
        assert delivered(report)

    def test_asend_from_another_event_loop(self) -> None:
        """``asend`` delivers a hand-built alert from a foreign loop too."""
        sink = Sink()
        with make_runtime(Channels(sink.channel("alpha")), channels=("alpha",)) as runtime:
            report = runtime.dispatch(stuck("first"))
            again = asyncio.run(runtime.asend(report.alerts[0].alert, is_test=True))
        assert again.delivered
        assert len(sink.sent) == 2

    def test_several_threads_at_once(self) -> None:
        """Eight threads (half sync, half each with its own event loop) dispatching at once
        all get their alerts delivered.
        """
        sink = Sink()
        count = 8
        barrier = threading.Barrier(count)

        def work(index: int) -> DispatchReport:
            barrier.wait(timeout=10)
            event = stuck(f"sup-{index}")
            if index % 2:
                return asyncio.run(runtime.adispatch(event))
            return runtime.dispatch(event)

        with (
            make_runtime(Channels(sink.channel("alpha")), channels=("alpha",)) as runtime,
            ThreadPoolExecutor(max_workers=count) as pool,
        ):
            reports = list(pool.map(work, range(count)))
        assert all(delivered(report) for report in reports)
        assert sorted(alert.key for _, alert in sink.sent) == sorted(
            f"sup-{index}" for index in range(count)
        )

    def test_same_alert_from_several_threads_is_delivered_once(self) -> None:
        """The same incident dispatched by eight threads at once passes the rate limit
        exactly once.
        """
        sink = Sink()
        count = 8
        barrier = threading.Barrier(count)

        def work(_: int) -> DispatchReport:
            barrier.wait(timeout=10)
            return runtime.dispatch(stuck("shared"))

        with (
            make_runtime(Channels(sink.channel("alpha")), channels=("alpha",)) as runtime,
            ThreadPoolExecutor(max_workers=count) as pool,
        ):
            reports = list(pool.map(work, range(count)))
        verdicts = sorted(report.alerts[0].verdict.kind for report in reports)
        assert verdicts.count(VerdictKind.SEND) == 1
        assert verdicts.count(VerdictKind.SUPPRESS) == count - 1
        assert len(sink.sent) == 1


class TestClose:
    def test_close_closes_channels_and_store(self) -> None:
        """close() calls aclose on every built channel, even after one fails to close,
        and closes the store.
        """
        sink = Sink()
        clock = ManualClock()
        store = MemoryStore(clock)
        runtime = make_runtime(
            Channels(sink.channel("alpha", fail_close=True), sink.channel("beta")),
            clock=clock,
            store=store,
            channels=("alpha", "beta"),
        )
        runtime.dispatch(stuck())
        runtime.close()
        assert sorted(sink.closed) == ["alpha", "beta"]
        with pytest.raises(StoreError):
            store.get("anything")

    def test_context_manager_closes(self) -> None:
        """Leaving the ``with`` block closes the runtime's store."""
        clock = ManualClock()
        store = MemoryStore(clock)
        with make_runtime(clock=clock, store=store, channels=("log",)) as runtime:
            runtime.dispatch(stuck())
        with pytest.raises(StoreError):
            store.set("k", "v")

    def test_repr_shows_no_store_credentials(self) -> None:
        """The runtime's repr masks secrets in the store URL."""
        clock = ManualClock()
        store = MemoryStore(clock, url="memory://")
        with make_runtime(clock=clock, store=store, channels=("log",)) as runtime:
            assert repr(runtime) == "<Chaperone store='memory://' channels=['log']>"


class TestFromEnvironment:
    def test_builds_on_the_configured_store(self, tmp_path: Path) -> None:
        """from_environment reads the environment given, opens the SQLite store it names,
        and history written through it is in that file.
        """
        path = tmp_path / "c.db"
        environ = {
            "CHAPERONE_STORE": f"sqlite:///{path}",
            "CHAPERONE_ALERT_CHANNELS": "database",
            "CHAPERONE_LOG_LEVEL": "error",
        }
        clock = ManualClock()
        with Chaperone.from_environment(
            environ=environ, cwd=tmp_path, clock=clock, setup_logging=False
        ) as runtime:
            assert isinstance(runtime.store, ResilientStore)
            assert runtime.store.state is StoreState.UP
            assert runtime.store.url == f"sqlite:///{path}"
            assert runtime.settings.channels == ("database",)
            assert runtime.clock is clock
            report = runtime.dispatch(stuck())
        assert delivered(report)
        reopened = SQLiteStore(path, clock, f"sqlite:///{path}")
        try:
            history = read_history(reopened, 10)
        finally:
            reopened.close()
        assert [(record["channel"], record["key"]) for record in history] == [("database", "sup-1")]

    def test_reads_dotenv_in_cwd(self, tmp_path: Path) -> None:
        """Settings come from the ``.env`` in the given directory, under the environment."""
        (tmp_path / ".env").write_text(
            "CHAPERONE_ALERT_CHANNELS=log\nCHAPERONE_ALERTING_ENABLED=false\n"
        )
        environ = {"CHAPERONE_STORE": "memory://", "CHAPERONE_ALERT_CHANNELS": "database"}
        with Chaperone.from_environment(
            environ=environ, cwd=tmp_path, clock=ManualClock(), setup_logging=False
        ) as runtime:
            assert runtime.settings.channels == ("database",)
            assert runtime.settings.enabled is False
            report = runtime.dispatch(stuck())
        assert report.alerts == ()
        assert report.skipped is not None

    def test_bad_environment_fails_at_start_up(self, tmp_path: Path) -> None:
        """An unknown channel in the environment fails from_environment, naming it."""
        environ = {"CHAPERONE_STORE": "memory://", "CHAPERONE_ALERT_CHANNELS": "log,nosuch"}
        with pytest.raises(UnknownChannelError) as caught:
            Chaperone.from_environment(environ=environ, cwd=tmp_path, setup_logging=False)
        assert caught.value.problems[0].source == "environment"
        assert "chaperone-nosuch" in str(caught.value)
