"""Plugin discovery through the real CLI: built-ins, an installed channel plugin, a plugin
named like a built-in once was, a plugin that fails on import, and plugins disabled by
configuration.

Needs the fixture plugins under tests/fixtures/plugins installed in the test environment
(see ``helpers.cli.INSTALL_LINE``); without them these tests fail saying so.
"""

from __future__ import annotations

import importlib.metadata
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:  # until pytest's configuration says pythonpath = ["tests"]
    sys.path.insert(0, _TESTS)


from chaperone import PluginHost, SystemClock  # noqa: E402
from chaperone.metrics import read_delivery_stats  # noqa: E402
from chaperone.store import SQLiteStore  # noqa: E402
from helpers.cli import (  # noqa: E402
    STORE_FILE,
    CliResult,
    Invocation,
    clean_environ,
    require_fixture_plugins,
    run_many,
    store_url,
)

BUILTIN_CHANNELS = {
    "chaperone.builtin.alert_builder": [],
    "chaperone.builtin.ratelimit_filter": [],
    "chaperone.builtin.routing": [],
    "chaperone.builtin.log_channel": ["log"],
    "chaperone.builtin.database_channel": ["database"],
}
BROKEN_ERROR = "RuntimeError: chaperone-brokenplugin fails on import on purpose"


@pytest.fixture(autouse=True)
def _fixture_plugins() -> None:
    require_fixture_plugins()


def _by_name(result: CliResult) -> dict[str, dict[str, Any]]:
    assert result.returncode == 0, str(result)
    listed = result.json()
    assert isinstance(listed, list), str(result)
    names = [entry["name"] for entry in listed]
    assert len(names) == len(set(names)), f"a plugin is listed twice: {names}"
    return {entry["name"]: entry for entry in listed}


FOLDERS: dict[str, Path] = {}
"""The folders of the runs whose store a test reads afterwards."""


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CliResult]:
    """Every command these tests look at, run at once, each in its own folder."""
    require_fixture_plugins()
    invocations: dict[str, Invocation] = {}

    def add(name: str, *args: str, **variables: str) -> None:
        folder = tmp_path_factory.mktemp(name)
        invocations[name] = Invocation(args, folder, clean_environ(folder, **variables))

    add("listing", "plugins", "--json")
    FOLDERS["test-alerts"] = tmp_path_factory.mktemp("test-alerts")
    add("table", "plugins")
    folder = FOLDERS["test-alerts"]
    invocations["test-alerts"] = Invocation(
        ("test-alerts", "--json"), folder, clean_environ(folder)
    )
    add("broken-channel", "test-alerts", CHAPERONE_ALERT_CHANNELS="broken")
    add("disabled", "plugins", "--json", CHAPERONE_DISABLE_PLUGINS="webhook, broken")
    add("refused", "plugins", "--json", CHAPERONE_DISABLE_PLUGINS="chaperone.builtin.routing")
    add(
        "disabled-channel",
        "test-alerts",
        CHAPERONE_DISABLE_PLUGINS="webhook",
        CHAPERONE_ALERT_CHANNELS="webhook",
        CHAPERONE_WEBHOOK_URL="http://127.0.0.1:9/hook",
    )
    return run_many(invocations)


@pytest.fixture
def listing(runs: dict[str, CliResult]) -> CliResult:
    """``chaperone plugins --json`` with nothing disabled."""
    return runs["listing"]


class TestPluginsJson:
    """``chaperone plugins --json`` lists what was found, working or not."""

    def test_stdout_is_only_json(self, listing: CliResult) -> None:
        """Standard output parses as one JSON list even though a plugin failed to load:
        the broken plugin's log line goes to standard error.
        """
        assert listing.returncode == 0, str(listing)
        assert isinstance(listing.json(), list)
        assert "plugin failed to load" not in listing.stdout
        assert "plugin failed to load" in listing.stderr

    def test_lists_builtins_with_their_channels(self, listing: CliResult) -> None:
        """Every built-in plugin is listed as chaperone-core's, working, with its channels."""
        plugins = _by_name(listing)
        core_version = importlib.metadata.version("chaperone-core")
        for name, channels in BUILTIN_CHANNELS.items():
            entry = plugins[name]
            assert entry["builtin"] is True
            assert entry["distribution"] == "chaperone-core"
            assert entry["version"] == core_version
            assert entry["channels"] == channels
            assert entry["status"] == "ok"
            assert entry["error"] is None

    def test_lists_the_installed_channel_plugin(self, listing: CliResult) -> None:
        """The webhook plugin is listed with its distribution, version and channel."""
        entry = _by_name(listing)["webhook"]
        assert entry == {
            "name": "webhook",
            "module": "chaperone_testwebhook",
            "distribution": "chaperone-testwebhook",
            "version": importlib.metadata.version("chaperone-testwebhook"),
            "builtin": False,
            "channels": ["webhook"],
            "status": "ok",
            "error": None,
        }
        assert entry["version"] == "0.3.1"

    def test_lists_the_broken_plugin_with_its_error(self, listing: CliResult) -> None:
        """The plugin whose module raises on import is listed as broken, saying why."""
        entry = _by_name(listing)["broken"]
        assert entry["distribution"] == "chaperone-brokenplugin"
        assert entry["version"] == "0.0.1"
        assert entry["status"] == "broken"
        assert entry["error"] == BROKEN_ERROR
        assert entry["channels"] == []

    def test_builtins_come_first(self, listing: CliResult) -> None:
        """Built-ins are listed before installed plugins, those named here in this order
        (the order filters run in).
        """
        entries = listing.json()
        flags = [entry["builtin"] for entry in entries]
        assert flags == sorted(flags, reverse=True)
        names = [entry["name"] for entry in entries if entry["name"] in BUILTIN_CHANNELS]
        assert names == list(BUILTIN_CHANNELS)

    def test_a_plugin_named_metrics_loads_beside_the_builtin(self, listing: CliResult) -> None:
        """The entry point ``metrics`` is listed working, beside the built-in delivery
        metrics: built-ins go by their dotted module names, so no short name collides.
        """
        plugins = _by_name(listing)
        assert plugins["metrics"]["status"] == "ok", plugins["metrics"]
        assert plugins["metrics"]["distribution"] == "chaperone-testwebhook"
        assert plugins["metrics"]["builtin"] is False
        assert plugins["chaperone.builtin.delivery_metrics"]["status"] == "ok"
        assert '"plugin": "metrics"' not in listing.stderr

    def test_every_builtin_is_the_cores(self, listing: CliResult) -> None:
        """Built-ins not named here (detectors, filters to come) are chaperone-core's too."""
        builtins = [entry for entry in listing.json() if entry["builtin"]]
        assert {entry["distribution"] for entry in builtins} == {"chaperone-core"}
        assert {entry["status"] for entry in builtins} == {"ok"}


class TestPluginsTable:
    """``chaperone plugins`` without ``--json`` shows the same as a table."""

    def test_table_names_distributions_and_the_error(self, runs: dict[str, CliResult]) -> None:
        """The table shows the webhook plugin's distribution and the broken one's error."""
        result = runs["table"]
        assert result.returncode == 0, str(result)
        assert "chaperone-testwebhook" in result.stdout
        assert "0.3.1" in result.stdout
        assert "broken" in result.stdout
        assert "fails on import on purpose" in result.stdout
        assert "plugin failed to load" in result.stderr


class TestBrokenPluginIsNotFatal:
    """A plugin that fails on import costs only itself."""

    def test_test_alerts_still_delivers(self, runs: dict[str, CliResult]) -> None:
        """test-alerts exits 0 with every sample delivered to log and database."""
        result = runs["test-alerts"]
        assert result.returncode == 0, str(result)
        rows = result.json()
        assert {(row["channel"], row["status"]) for row in rows} == {
            ("log", "delivered"),
            ("database", "delivered"),
        }
        assert len(rows) == 8
        assert "plugin failed to load" in result.stderr

    def test_channel_named_after_it_says_it_is_broken(self, runs: dict[str, CliResult]) -> None:
        """Asking for a channel called like the broken plugin says it is installed but
        broken, with its error, instead of suggesting an install.
        """
        result = runs["broken-channel"]
        assert result.returncode == 2, str(result)
        assert "installed but broken" in result.stderr
        assert BROKEN_ERROR in result.stderr

    def test_the_metrics_plugin_runs_beside_the_builtin(self, runs: dict[str, CliResult]) -> None:
        """Each of test-alerts' eight deliveries is counted twice: by the plugin
        ``metrics`` under its own key and by the built-in delivery metrics.
        """
        from chaperone_testwebhook import DELIVERED_KEY  # installed as a fixture plugin

        assert runs["test-alerts"].returncode == 0, str(runs["test-alerts"])
        path = FOLDERS["test-alerts"] / STORE_FILE
        store = SQLiteStore(path, SystemClock(), store_url(path))
        try:
            counted = store.get(DELIVERED_KEY)
            stats = read_delivery_stats(
                store, now=time.time(), window=timedelta(minutes=5), threshold=0.5
            )
        finally:
            store.close()
        assert counted == "8"
        assert stats.totals.sent == 8

    def test_in_process_host_lists_it_too(self) -> None:
        """PluginHost in this process finds the same entry points, the broken one broken."""
        host = PluginHost()
        assert host.channel_classes["webhook"].__module__ == "chaperone_testwebhook"
        assert [info.name for info in host.broken] == ["broken"]
        provider = host.provider_of("webhook")
        assert provider is not None
        assert provider.distribution == "chaperone-testwebhook"


class TestDisablingPlugins:
    """CHAPERONE_DISABLE_PLUGINS blocks plugins by name."""

    def test_disabled_plugin_gives_no_channel(self, runs: dict[str, CliResult]) -> None:
        """A disabled webhook plugin is listed as disabled and registers no channel."""
        entry = _by_name(runs["disabled"])["webhook"]
        assert entry["status"] == "disabled"
        assert entry["channels"] == []

    def test_disabled_channel_cannot_be_configured(self, runs: dict[str, CliResult]) -> None:
        """Configuring the channel of a disabled plugin exits 2, naming the distribution
        that would provide it and the channels that are installed.
        """
        result = runs["disabled-channel"]
        assert result.returncode == 2, str(result)
        assert "chaperone-webhook" in result.stderr
        assert "CHAPERONE_ALERT_CHANNELS" in result.stderr
        installed = result.stderr.split("installed channels: ", 1)[1].split(")")[0]
        assert {"database", "log"} <= set(installed.split(", "))
        assert "webhook" not in installed.split(", ")

    def test_a_builtin_that_cannot_be_disabled_is_listed_with_a_warning(
        self, runs: dict[str, CliResult]
    ) -> None:
        """The routing named in CHAPERONE_DISABLE_PLUGINS stays loaded (start-up refuses
        it), and the listing warns on standard error why, its JSON intact.
        """
        result = runs["refused"]
        assert _by_name(result)["chaperone.builtin.routing"]["status"] == "ok"
        assert (
            "warning: CHAPERONE_DISABLE_PLUGINS (from environment): the built-in plugin "
            "'chaperone.builtin.routing' cannot be disabled"
        ) in result.stderr
        assert "warning" not in runs["disabled"].stderr

    def test_disabling_the_broken_plugin_silences_it(self, runs: dict[str, CliResult]) -> None:
        """A disabled broken plugin is not imported: listed as disabled, nothing logged."""
        result = runs["disabled"]
        entry = _by_name(result)["broken"]
        assert entry["status"] == "disabled"
        assert entry["error"] is None
        assert "plugin failed to load" not in result.stderr
