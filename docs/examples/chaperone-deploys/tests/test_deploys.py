"""The deployment watch, run as Chaperone runs it: settings from a real configuration
folder, the monitor's ticks on a manual clock, the commands through click's runner, the
store on a real SQLite file.
"""

# ruff: noqa: S101 - pytest states its checks with assert

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import chaperone_deploys
import click
import pytest
from chaperone_deploys import DeploymentFailed, DeploySettings, start_deployment
from click.testing import CliRunner

import chaperone
from chaperone.builtin.database_channel import read_history
from chaperone.store import SQLiteStore

START = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


def runtime_in(folder: Path, clock: chaperone.ManualClock, **environ: str) -> chaperone.Chaperone:
    """A runtime configured from ``folder`` (its chaperone.toml), with this plugin
    registered as its entry point would, and a SQLite store in the folder.
    """
    environ.setdefault("CHAPERONE_STORE", f"sqlite:///{folder / 'chaperone.sqlite3'}")
    environ.setdefault("CHAPERONE_ALERT_CHANNELS", "database")
    settings = chaperone.load_settings(environ, folder)
    plugins = chaperone.PluginHost(entry_points=False, extra=[("deploys", chaperone_deploys)])
    return chaperone.Chaperone(settings, clock=clock, plugins=plugins)


@pytest.fixture
def clock() -> chaperone.ManualClock:
    """A clock the tests move."""
    return chaperone.ManualClock(START)


@pytest.fixture
def runtime(tmp_path: Path, clock: chaperone.ManualClock) -> Iterator[chaperone.Chaperone]:
    """A runtime whose deployments are slow after 15 minutes, staging's quiet."""
    (tmp_path / "chaperone.toml").write_text(
        '[plugins.deploys]\nslow_after = "15m"\nquiet = ["staging"]\n', encoding="utf-8"
    )
    with runtime_in(tmp_path, clock) as runtime:
        yield runtime


def titles(runtime: chaperone.Chaperone) -> list[str]:
    """What the database channel received, oldest first."""
    return [record["title"] for record in reversed(read_history(runtime.store, 100))]


class TestSettings:
    """``[plugins.deploys]`` and ``CHAPERONE_DEPLOYS_*``."""

    def test_the_table_and_the_environment_are_read(
        self, tmp_path: Path, clock: chaperone.ManualClock
    ) -> None:
        """``[plugins.deploys]`` sets the values; a variable overrides the file."""
        (tmp_path / "chaperone.toml").write_text(
            '[plugins.deploys]\nslow_after = "15m"\n', encoding="utf-8"
        )
        with runtime_in(tmp_path, clock, CHAPERONE_DEPLOYS_QUIET="staging,qa") as runtime:
            settings = runtime.settings.plugin("deploys")
        assert settings == DeploySettings(slow_after=timedelta(minutes=15), quiet=("staging", "qa"))

    def test_a_wrong_type_stops_start_up(
        self, tmp_path: Path, clock: chaperone.ManualClock
    ) -> None:
        """A value that is no duration is a ConfigError naming the setting and file."""
        (tmp_path / "chaperone.toml").write_text(
            '[plugins.deploys]\nslow_after = "soon"\n', encoding="utf-8"
        )
        with pytest.raises(chaperone.ConfigError) as caught:
            runtime_in(tmp_path, clock)
        [problem] = caught.value.problems
        assert problem.key == "plugins.deploys.slow_after"
        assert problem.source == str(tmp_path / "chaperone.toml")


class TestDetectorAndFilter:
    """Slow deployments found on the monitor's ticks, quiet ones filtered."""

    def test_a_slow_deployment_is_alerted_once(
        self, runtime: chaperone.Chaperone, clock: chaperone.ManualClock
    ) -> None:
        """Past ``slow_after`` the monitor's tick raises one alert, not one per tick."""
        start_deployment(runtime.store, "billing", "2.4.0", clock.now())
        monitor = chaperone.Monitor(runtime)
        monitor.tick()
        clock.advance(timedelta(minutes=16))
        monitor.tick()
        clock.advance(timedelta(minutes=1))
        monitor.tick()
        assert titles(runtime) == ["Deployment Slow: billing 2.4.0"]

    def test_a_quiet_service_is_filtered_out(
        self, runtime: chaperone.Chaperone, clock: chaperone.ManualClock
    ) -> None:
        """The filter suppresses the alerts of a service listed in ``quiet``."""
        start_deployment(runtime.store, "staging", "2.4.0", clock.now())
        clock.advance(timedelta(hours=1))
        [report] = chaperone.Monitor(runtime).tick()
        assert report.alerts[0].verdict.reason == "staging is quiet"
        assert titles(runtime) == []


class TestEvents:
    """The plugin's own events, queued by another process."""

    def test_a_queued_failure_reaches_the_channel(
        self, runtime: chaperone.Chaperone, clock: chaperone.ManualClock
    ) -> None:
        """A failure a deploying process queues is delivered on the monitor's next tick."""
        job_side = chaperone.Supervisor(runtime.store, clock)
        assert job_side.emit(DeploymentFailed(service="web", version="7", reason="health check"))
        chaperone.Monitor(runtime).tick()
        assert titles(runtime) == ["Deployment Failed: web 7"]


class TestCommands:
    """``chaperone deploys ...``."""

    def test_start_then_finish(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """``chaperone deploys start`` records the deployment; ``finish`` forgets it."""
        monkeypatch.chdir(tmp_path)  # no chaperone.toml or .env but the test's
        cli = click.Group("chaperone")
        chaperone_deploys.chaperone_register_commands(cli)
        url = f"sqlite:///{tmp_path / 'chaperone.sqlite3'}"
        runner = CliRunner(env={"CHAPERONE_STORE": url, "CHAPERONE_ALERT_CHANNELS": "database"})
        started = runner.invoke(cli, ["deploys", "start", "billing", "2.4.0"])
        assert started.exit_code == 0, started.output
        store = SQLiteStore(tmp_path / "chaperone.sqlite3", chaperone.SystemClock(), url)
        try:
            assert store.keys(chaperone_deploys.RUNNING) == ["deploys:running:billing"]
            finished = runner.invoke(cli, ["deploys", "finish", "billing"])
            assert finished.exit_code == 0, finished.output
            assert store.keys(chaperone_deploys.RUNNING) == []
        finally:
            store.close()


class TestStore:
    """``scratch://NAME``."""

    def test_scratch_opens_a_sqlite_file_in_the_temporary_directory(self) -> None:
        """``scratch://NAME`` is a working store that keeps its URL."""
        store = chaperone_deploys.open_scratch("scratch://deploys-test", chaperone.ManualClock())
        try:
            store.set("k", "v")
            assert (store.url, store.get("k")) == ("scratch://deploys-test", "v")
        finally:
            store.delete("k")
            store.close()


class TestEntryPoints:
    """What ``pyproject.toml`` declares."""

    def test_installed_entry_points_load(self) -> None:
        """When the distribution is installed, both of its entry points load."""
        try:
            importlib.metadata.distribution("chaperone-deploys")
        except importlib.metadata.PackageNotFoundError:
            pytest.skip("not installed: run pip install -e .")
        [plugin] = importlib.metadata.entry_points(group="chaperone", name="deploys")
        [store] = importlib.metadata.entry_points(group="chaperone.stores", name="scratch")
        assert plugin.load() is chaperone_deploys
        assert store.load() is chaperone_deploys.open_scratch
