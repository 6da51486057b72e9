"""Disabling each built-in (``CHAPERONE_DISABLE_PLUGINS`` / ``plugins.disable``), as
docs/configuration.md says: either it does what its name says (not registered: none of
its hooks is called, its channel is not installed) or it is refused at start-up with a
ConfigError naming it. Never a silent fallback, never a silent drop.

Every module of the built-in folder must be listed in :data:`REFUSED` or :data:`DISABLED`,
so a new built-in cannot be forgotten. The user-facing effects run the real ``chaperone``
in subprocesses, each on its own SQLite file.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:  # until pytest's configuration says pythonpath = ["tests"]
    sys.path.insert(0, _TESTS)

from chaperone import (  # noqa: E402
    Chaperone,
    ConfigError,
    JobStuck,
    ManualClock,
    PluginHost,
    Settings,
    SystemClock,
)
from chaperone._plugins import builtin_modules  # noqa: E402
from chaperone.metrics import read_delivery_stats  # noqa: E402
from chaperone.store import MemoryStore, SQLiteStore  # noqa: E402
from helpers.cli import (  # noqa: E402
    STORE_FILE,
    CliResult,
    Invocation,
    clean_environ,
    require_fixture_plugins,
    run_many,
    store_url,
    stored_history,
)

BUILTIN_NAMES = [module.__name__ for module in builtin_modules()]
"""Every built-in plugin, lowest ORDER first."""
REFUSED = {
    "chaperone.builtin.alert_builder": "every event becomes its alerts here",
    "chaperone.builtin.queued_events": "they would pile up there unread",
    "chaperone.builtin.alert_grouping": "the alerts it holds would never be flushed",
    "chaperone.builtin.routing": "it routes by the configuration",
}
"""The built-ins that cannot be disabled, with part of the reason each gives."""
DISABLED = {
    "chaperone.builtin.job_detector": "stuck, timed-out and abandoned jobs are not detected",
    "chaperone.builtin.threshold_detector": "no threshold alert opens or resolves",
    "chaperone.builtin.schedule_detector": "no missed scheduled run is detected",
    "chaperone.builtin.priority_rules": "an alert keeps the priority it was built with",
    "chaperone.builtin.open_incidents": "open incidents are not recorded",
    "chaperone.builtin.maintenance_windows": "no window suppresses, no summary is sent",
    "chaperone.builtin.escalation_filter": "repeats are not spaced out by escalation",
    "chaperone.builtin.ratelimit_filter": "no rate-limit window holds a repeat back",
    "chaperone.builtin.delivery_metrics": "deliveries are not counted",
    "chaperone.builtin.selfwatch": "a failing channel is not alerted as chaperone_degraded",
    "chaperone.builtin.log_channel": "the channel log is not installed",
    "chaperone.builtin.database_channel": "the channel database is not installed",
}
"""The built-ins that may be disabled, with what that does (as the docs say)."""
HOOKS = (
    "chaperone_detect",
    "chaperone_alerts",
    "chaperone_alert_priority",
    "chaperone_filter_alert",
    "chaperone_route",
    "chaperone_delivered",
    "chaperone_delivery_failed",
    "chaperone_register_channels",
)
"""The hooks the built-ins implement."""
DEAD_URL = "http://127.0.0.1:9/hook"
"""A webhook nobody listens on (the discard port): every delivery to it fails."""


def runtime_with(*disabled: str, channels: tuple[str, ...] = ("log",)) -> Chaperone:
    """A validated runtime on a memory store with ``disabled`` built-ins, no entry points."""
    clock = ManualClock(datetime(2024, 1, 15, 10, 0, tzinfo=UTC))
    settings = Settings(channels=channels, disabled_plugins=disabled, store_url="memory://")
    host = PluginHost(entry_points=False, disabled=disabled)
    return Chaperone(settings, clock=clock, store=MemoryStore(clock), plugins=host)


def implementers(host: PluginHost) -> set[str]:
    """Every plugin name that implements one of the built-ins' hooks."""
    return {impl.plugin_name for hook in HOOKS for impl in getattr(host.hook, hook).get_hookimpls()}


def stuck_event() -> JobStuck:
    """A stuck job, the same each time (one incident)."""
    return JobStuck(
        supervision_id="sup-1",
        job_class="reports.build_monthly",
        stuck_duration=timedelta(minutes=30),
        occurred_at=datetime(2024, 1, 15, 10, 0, tzinfo=UTC),
    )


def delivered_count(folder: Path) -> int:
    """How many deliveries the built-in metrics counted in ``folder``'s store."""
    path = folder / STORE_FILE
    store = SQLiteStore(path, SystemClock(), store_url(path))
    try:
        stats = read_delivery_stats(
            store, now=time.time(), window=timedelta(minutes=5), threshold=0.5
        )
    finally:
        store.close()
    return stats.totals.sent


class TestEveryBuiltin:
    @pytest.mark.parametrize("name", BUILTIN_NAMES)
    def test_each_builtin_says_what_disabling_does(self, name: str) -> None:
        """Every module of the folder is either refused or has its documented effect."""
        assert (name in REFUSED) != (name in DISABLED), f"decide how {name} is disabled"

    @pytest.mark.parametrize("name", BUILTIN_NAMES)
    def test_disabling_does_what_it_says_or_is_refused(self, name: str) -> None:
        """Disabled, a built-in is listed disabled and none of its hooks is registered,
        and the runtime starts; one that cannot be disabled is refused at start-up with a
        ConfigError naming it and why.
        """
        if name in REFUSED:
            with pytest.raises(ConfigError) as caught:
                runtime_with(name)
            [problem] = caught.value.problems
            assert problem.key == "plugins.disable"
            assert problem.message.startswith(f"the built-in plugin {name!r} cannot be disabled")
            assert REFUSED[name] in problem.message
            return
        channels = ("database",) if name.endswith("log_channel") else ("log",)
        with runtime_with(name, channels=channels) as runtime:
            host = runtime.plugins
            (info,) = [item for item in host.plugins if item.name == name]
            assert info.status == "disabled"
            assert host.manager.get_plugin(name) is None
            assert name not in implementers(host)
            assert set(BUILTIN_NAMES) - {name} <= {item.name for item in host.plugins}

    @pytest.mark.parametrize("name", BUILTIN_NAMES)
    def test_every_other_builtin_still_runs(self, name: str) -> None:
        """Disabling one built-in leaves every other registered."""
        host = PluginHost(entry_points=False, disabled=(name,))
        running = {item.name for item in host.plugins if item.status == "ok"}
        expected = set(BUILTIN_NAMES) - ({name} if name in DISABLED else set())
        assert running == expected


class TestFiltersDisabled:
    def test_the_rate_limit_disabled_holds_no_repeat_back(self) -> None:
        """The same stuck job twice: the rate limit suppresses the repeat; disabled, both
        alerts are sent.
        """

        def statuses(*disabled: str) -> list[str]:
            names = (*disabled, "chaperone.builtin.escalation_filter")
            with runtime_with(*names) as runtime:
                reports = [runtime.dispatch(stuck_event()) for _ in range(2)]
            return [item.verdict.kind.value for report in reports for item in report.alerts]

        assert statuses() == ["send", "suppress"]
        assert statuses("chaperone.builtin.ratelimit_filter") == ["send", "send"]


# -------------------------------------------------------------------------------------
# Through the real CLI
# -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, CliResult]]:
    """Every command these tests look at, run at once, each in its own folder; the
    maintenance windows are opened first. The failing channel is the fixture plugin's
    webhook.
    """
    require_fixture_plugins()
    folders: dict[str, Path] = {}
    invocations: dict[str, Invocation] = {}

    def add(name: str, *args: str, **variables: str) -> None:
        folder = folders.setdefault(name, tmp_path_factory.mktemp(name))
        invocations[name] = Invocation(args, folder, clean_environ(folder, **variables))

    failing = {
        "CHAPERONE_ALERT_CHANNELS": "webhook,database",
        "CHAPERONE_WEBHOOK_URL": DEAD_URL,
        "CHAPERONE_DELIVERY_MAX_ATTEMPTS": "1",
    }
    disable = "CHAPERONE_DISABLE_PLUGINS"
    add("all-on", "test-alerts", "--json")
    add("routing", "test-alerts", **{disable: "chaperone.builtin.routing"})
    add("short-name", "test-alerts", **{disable: "ratelimit"})
    add("log", "test-alerts", **{disable: "chaperone.builtin.log_channel"})
    add(
        "database",
        "test-alerts",
        "--json",
        CHAPERONE_ALERT_CHANNELS="log",
        **{disable: "chaperone.builtin.database_channel"},
    )
    add("metrics", "test-alerts", "--json", **{disable: "chaperone.builtin.delivery_metrics"})
    add("selfwatch-on", "test-alerts", "stuck", "--json", **failing)
    add(
        "selfwatch-off",
        "test-alerts",
        "stuck",
        "--json",
        **failing,
        **{disable: "chaperone.builtin.selfwatch"},
    )
    add("maintenance-on", "maintenance", "start", "30m")
    add(
        "maintenance-off",
        "maintenance",
        "start",
        "30m",
        **{disable: "chaperone.builtin.maintenance_windows"},
    )
    results = {name: (folders[name], result) for name, result in run_many(invocations).items()}
    invocations.clear()
    add("maintenance-on", "test-alerts", "--json")
    add(
        "maintenance-off",
        "test-alerts",
        "--json",
        **{disable: "chaperone.builtin.maintenance_windows"},
    )
    for name, result in run_many(invocations).items():
        assert results[name][1].returncode == 0, str(results[name][1])
        results[name] = (folders[name], result)
    return results


def statuses(result: CliResult) -> list[str]:
    """The status of each delivery test-alerts printed as JSON."""
    assert result.returncode in (0, 1), str(result)
    rows: list[dict[str, Any]] = result.json()
    return [row["status"] for row in rows]


class TestThroughTheCli:
    def test_disabling_the_routing_is_refused(self, cli: dict[str, tuple[Path, CliResult]]) -> None:
        """test-alerts exits 2 naming the routing and why it cannot be disabled, and
        sends nothing.
        """
        folder, result = cli["routing"]
        assert result.returncode == 2, str(result)
        assert "CHAPERONE_DISABLE_PLUGINS (from environment)" in result.stderr
        assert "the built-in plugin 'chaperone.builtin.routing' cannot be disabled" in (
            result.stderr
        )
        assert result.stdout == ""
        assert stored_history(folder) == []

    def test_a_short_name_of_old_is_refused(self, cli: dict[str, tuple[Path, CliResult]]) -> None:
        """``ratelimit`` is no plugin's name: exit 2, naming the built-in it meant."""
        _, result = cli["short-name"]
        assert result.returncode == 2, str(result)
        assert "did you mean 'chaperone.builtin.ratelimit_filter'?" in result.stderr

    def test_the_log_channel_disabled_is_not_installed(
        self, cli: dict[str, tuple[Path, CliResult]]
    ) -> None:
        """With the log channel disabled, the default channels name a channel no
        installed plugin provides: exit 2, saying which built-in is disabled.
        """
        _, result = cli["log"]
        assert result.returncode == 2, str(result)
        assert "no installed plugin provides channel 'log'" in result.stderr
        assert "the built-in plugin 'chaperone.builtin.log_channel' is disabled" in result.stderr

    def test_the_database_channel_disabled_keeps_no_history(
        self, cli: dict[str, tuple[Path, CliResult]]
    ) -> None:
        """Disabled, the database channel records nothing; with it, test-alerts' eight
        deliveries are in the history.
        """
        folder, result = cli["database"]
        assert statuses(result) == ["delivered"] * 4
        assert stored_history(folder) == []
        assert len(stored_history(cli["all-on"][0])) == 8

    def test_the_metrics_disabled_count_nothing(
        self, cli: dict[str, tuple[Path, CliResult]]
    ) -> None:
        """Disabled, the delivery metrics count none of the eight deliveries; enabled,
        all eight.
        """
        folder, result = cli["metrics"]
        assert statuses(result) == ["delivered"] * 8
        assert delivered_count(folder) == 0
        assert delivered_count(cli["all-on"][0]) == 8

    def test_the_selfwatch_disabled_raises_no_degraded_alert(
        self, cli: dict[str, tuple[Path, CliResult]]
    ) -> None:
        """A webhook that fails for good makes Chaperone degraded, alerted to the
        database; with the self-watch disabled, no such alert.
        """

        def degraded(name: str) -> list[dict[str, Any]]:
            folder, result = cli[name]
            assert "failed" in statuses(result), str(result)
            return [row for row in stored_history(folder) if row["type"] == "chaperone_degraded"]

        assert degraded("selfwatch-on")
        assert degraded("selfwatch-off") == []

    def test_maintenance_disabled_suppresses_nothing(
        self, cli: dict[str, tuple[Path, CliResult]]
    ) -> None:
        """In a window matching everything, test-alerts delivers nothing; with the
        maintenance windows disabled, all eight.
        """
        assert "delivered" not in statuses(cli["maintenance-on"][1])
        assert statuses(cli["maintenance-off"][1]) == ["delivered"] * 8
