r"""``chaperone route``: the dry run that says which route an alert takes, its channels and
why, run as a person runs it (the real console script, a clean environment, a config
file in the working directory).

The issue's example routes to pagerduty and slack; those plugins may or may not be
installed (nox's ``combinations`` session runs this with none), and the dry run must
explain either way. Tests that need the fixture plugin chaperone-testwebhook say so.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import structlog
from click.testing import CliRunner

import chaperone
from chaperone import Alert, Destination, PluginHost, Priority
from chaperone.cli import cli
from chaperone.testing.servers import RecordingServer
from helpers.cli import (
    STORE_FILE,
    CliResult,
    Invocation,
    clean_environ,
    require_fixture_plugins,
    run_many,
)
from helpers.fatigue import ISSUE_EXAMPLE_CONFIG, ISSUE_SLACK_WEBHOOK

TOKEN = "ROUTE-SECRET-7c1d9e"  # noqa: S105 - the secret the tests look for

WEBHOOK_CONFIG = """
[alerting]
channels = ["log"]
[alerting.runbooks]
job_stuck = "https://docs.example.com/runbooks/job-stuck"
[[alerting.routes]]
name = "audit"
channels = ["database"]
continue = true
[[alerting.routes]]
name = "payments-team"
match = {{ team = "payments", severity = ["critical", "error"] }}
channels = ["webhook"]
webhook = {{ url = "{url}" }}
[[alerting.routes]]
name = "never"
channels = ["log"]
"""
"""Routes through the fixture plugin's webhook channel (``url`` is a secret)."""

PLUGIN_FREE_CONFIG = """
[alerting]
channels = ["log"]
[alerting.priority]
high = ["*Payment*"]
[[alerting.routes]]
name = "breakers"
match = { type = "circuit_breaker", severity = "critical" }
channels = ["database"]
[[alerting.routes]]
name = "missing"
match = { service = "mail*" }
channels = ["nosuchchannel"]
"""
"""Built-in channels only, and a route to a channel no plugin provides."""

PAYMENT_SYNC = "App\\Jobs\\PaymentSync"


@attrs.frozen
class Runs:
    """Every ``chaperone route`` run of this module, by name, and their folders."""

    results: dict[str, CliResult]
    folders: dict[str, Path]
    webhook_requests: int
    """Requests the webhook route's server received."""

    def __getitem__(self, name: str) -> CliResult:
        return self.results[name]


def _folder(base: Path, name: str, config: str) -> Path:
    folder = base / name
    folder.mkdir()
    (folder / "chaperone.toml").write_text(config)
    return folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    """Run every command of this module at once (most of a run is Python starting)."""
    base = tmp_path_factory.mktemp("route")
    folders = {
        "issue": _folder(base, "issue", ISSUE_EXAMPLE_CONFIG),
        "plain": _folder(base, "plain", PLUGIN_FREE_CONFIG),
        "broken": _folder(base, "broken", "[[alerting.routes]]\nname = 'x'\n"),
    }
    invocations: dict[str, tuple[str, tuple[str, ...], dict[str, str]]] = {
        "done": ("issue", ("--type", "job_stuck", "--job-class", PAYMENT_SYNC), {}),
        "done-json": ("issue", ("--type", "job_stuck", "--job-class", PAYMENT_SYNC, "--json"), {}),
        "normal-json": (
            "issue",
            ("--type", "job_stuck", "--job-class", "App\\Jobs\\ImportFeed", "--json"),
            {},
        ),
        "critical-job": (
            "issue",
            ("--type", "job_timeout", "--job-class", "App\\Jobs\\ChargeCustomer", "--json"),
            {},
        ),
        "breaker-json": (
            "plain",
            ("--type", "circuit_breaker", "--service", "payment-gateway", "--json"),
            {},
        ),
        "breaker-warning": (
            "plain",
            ("--type", "circuit_breaker", "--service", "payment-gateway", "--severity", "error"),
            {},
        ),
        "missing-channel": ("plain", ("--type", "threshold", "--service", "mailer", "--json"), {}),
        "priority-off": (
            "plain",
            ("--type", "job_stuck", "--job-class", PAYMENT_SYNC, "--json"),
            {"CHAPERONE_DISABLE_PLUGINS": "chaperone.builtin.priority_rules"},
        ),
        "routing-off": (
            "plain",
            ("--type", "circuit_breaker", "--service", "x", "--json"),
            {"CHAPERONE_DISABLE_PLUGINS": "chaperone.builtin.routing"},
        ),
        "bad-severity": ("plain", ("--type", "job_stuck", "--severity", "dire"), {}),
        "bad-priority": ("plain", ("--type", "job_stuck", "--priority", "urgent"), {}),
        "bad-label": ("plain", ("--type", "job_stuck", "--label", "team"), {}),
        "bad-type": ("plain", ("--type", "Job-Stuck"), {}),
        "no-type": ("plain", ("--job-class", PAYMENT_SYNC), {}),
        "bad-config": ("broken", ("--type", "job_stuck"), {}),
    }
    with RecordingServer() as server:
        url = server.url_for(f"/hook/{TOKEN}")
        folders["webhook"] = _folder(base, "webhook", WEBHOOK_CONFIG.format(url=url))
        payments = ("--type", "job_stuck", "--job-class", "App\\Jobs\\X")
        invocations["webhook"] = ("webhook", (*payments, "--label", "team=payments"), {})
        invocations["webhook-json"] = (
            "webhook",
            (*payments, "--label", "team = payments", "--json"),
            {},
        )
        invocations["webhook-ops"] = ("webhook", (*payments, "--label", "team=ops"), {})
        results = run_many(
            {
                name: Invocation(
                    ("route", *args), folders[folder], clean_environ(folders[folder], **extra)
                )
                for name, (folder, args, extra) in invocations.items()
            }
        )
        requests = len(server.requests)
    return Runs(results=results, folders=folders, webhook_requests=requests)


def ok_json(result: CliResult) -> Any:
    """The JSON of a run that must have exited 0."""
    assert result.returncode == 0, str(result)
    return result.json()


class TestDoneMeans:
    r"""The issue: ``chaperone route`` shows a ``*Payment*`` job routed to the critical
    route's channels with priority high.
    """

    def test_text(self, runs: Runs) -> None:
        """PaymentSync: priority high by the ``*Payment*`` rule, route 'critical' matched
        on priority, channels pagerduty and slack, the route's runbook; exit 0.
        """
        result = runs["done"]
        assert result.returncode == 0, str(result)
        out = result.stdout
        assert "Dry run: nothing is sent." in out
        assert "Priority: high (built as normal)" in out
        assert "matches high pattern '*Payment*'" in out
        assert "✓ route 'critical' matched:" in out
        assert "priority 'high' matches 'critical' or 'high'" in out
        assert "channels: pagerduty, slack (webhook_url=********)" in out
        assert "runbook: https://docs.example.com/runbooks/critical" in out
        assert "does not continue" in out
        destinations = out.split("Destinations:", 1)[1]
        assert "pagerduty (route critical)" in destinations
        assert "slack (route critical) with webhook_url=********" in destinations
        assert "log" not in destinations
        assert ISSUE_SLACK_WEBHOOK.rsplit("/", 1)[1] not in out + result.stderr

    def test_json(self, runs: Runs) -> None:
        """The same decision as JSON: priority, the matched route, two destinations."""
        data = ok_json(runs["done-json"])
        assert data["dry_run"] is True
        assert data["priority"] == {
            "priority": "high",
            "built_with": "normal",
            "decided_by": "chaperone.builtin.priority_rules",
            "builtin": True,
            "reason": "job class 'App\\Jobs\\PaymentSync' matches high pattern '*Payment*'",
        }
        [critical] = data["routing"]["routes"]
        assert critical["name"] == "critical"
        assert critical["status"] == "matched"
        assert critical["match"] == {"priority": ["critical", "high"]}
        assert data["routing"]["default_route"] is False
        assert data["destinations"] == [
            {
                "channel": "pagerduty",
                "route": "critical",
                "settings": {},
                "runbook_url": "https://docs.example.com/runbooks/critical",
            },
            {
                "channel": "slack",
                "route": "critical",
                "settings": {"webhook_url": "********"},
                "runbook_url": "https://docs.example.com/runbooks/critical",
            },
        ]

    def test_pagerduty_without_routing_key_is_a_warning(self, runs: Runs) -> None:
        """PagerDuty has no routing key here (or is not installed): a warning naming it,
        and still exit 0.
        """
        data = ok_json(runs["done-json"])
        assert any(warning.startswith("pagerduty (route 'critical')") for warning in
                   data["warnings"]), data["warnings"]  # fmt: skip
        assert "Warnings" in runs["done"].stdout

    def test_nothing_is_stored(self, runs: Runs) -> None:
        """The dry run opens no store: the configured SQLite file is never created."""
        assert not (runs.folders["issue"] / STORE_FILE).exists()
        assert not (runs.folders["plain"] / STORE_FILE).exists()


class TestDecisions:
    """Other alerts, other routes."""

    def test_unmatched_takes_the_default_route(self, runs: Runs) -> None:
        """ImportFeed stays normal, the critical route does not match and says why, and
        the default channels (log, database) are the destinations.
        """
        data = ok_json(runs["normal-json"])
        assert data["priority"]["priority"] == "normal"
        assert data["priority"]["reason"].endswith("matches no priority rule: it stays normal")
        [critical] = data["routing"]["routes"]
        assert critical["status"] == "not matched"
        assert critical["why"] == ["priority 'normal' does not match 'critical' or 'high'"]
        assert data["routing"]["default_route"] is True
        assert [(d["channel"], d["route"]) for d in data["destinations"]] == [
            ("log", "default"),
            ("database", "default"),
        ]
        assert data["warnings"] == []

    def test_critical_job(self, runs: Runs) -> None:
        """A job in critical_jobs is critical and takes the critical route."""
        data = ok_json(runs["critical-job"])
        assert data["priority"]["priority"] == "critical"
        assert "critical_jobs entry" in data["priority"]["reason"]
        assert [d["channel"] for d in data["destinations"]] == ["pagerduty", "slack"]

    def test_circuit_breaker_has_its_usual_severity(self, runs: Runs) -> None:
        """Without --severity a circuit breaker is critical, as the built-in alert is, so
        the 'breakers' route matches; the later route is not considered.
        """
        data = ok_json(runs["breaker-json"])
        assert data["alert"]["severity"] == "critical"
        assert data["priority"]["reason"].startswith("no job class")
        breakers, missing = data["routing"]["routes"]
        assert breakers["status"] == "matched"
        assert breakers["why"] == [
            "type 'circuit_breaker' matches 'circuit_breaker'",
            "severity 'critical' matches 'critical'",
        ]
        assert missing["status"] == "not considered"
        assert missing["why"] == ["route 'breakers' matched first and does not continue"]
        assert data["destinations"] == [
            {"channel": "database", "route": "breakers", "settings": {}, "runbook_url": None}
        ]

    def test_severity_option_changes_the_route(self, runs: Runs) -> None:
        """--severity error: the breakers route does not match, the missing one neither,
        the default route applies.
        """
        result = runs["breaker-warning"]
        assert result.returncode == 0, str(result)
        assert "✗ route 'breakers' not matched:" in result.stdout
        assert "severity 'error' does not match 'critical'" in result.stdout
        assert "service unset does not match" not in result.stdout
        assert "no route matched: the default route applies" in result.stdout
        assert "  log (route default)" in result.stdout

    def test_uninstalled_channel_is_a_warning(self, runs: Runs) -> None:
        """A route to a channel no plugin provides: shown, warned about with the
        package to install, exit 0.
        """
        data = ok_json(runs["missing-channel"])
        assert [d["channel"] for d in data["destinations"]] == ["nosuchchannel"]
        [warning] = data["warnings"]
        assert "nosuchchannel (route 'missing')" in warning
        assert "pip install chaperone-nosuchchannel" in warning

    def test_disabled_priority_rules(self, runs: Runs) -> None:
        """With the built-in priority plugin disabled, the priority stays as built."""
        data = ok_json(runs["priority-off"])
        assert data["priority"]["priority"] == "normal"
        assert data["priority"]["decided_by"] is None
        assert "built-in rules are disabled" in data["priority"]["reason"]

    def test_disabled_routing_plugin_is_refused(self, runs: Runs) -> None:
        """The built-in routing cannot be disabled: the dry run routes by the config as
        the pipeline would, and warns that the monitor would refuse to start, naming it.
        """
        data = ok_json(runs["routing-off"])
        assert data["routing"]["builtin"] is True
        assert [d["route"] for d in data["destinations"]] == ["breakers"]
        [warning] = data["warnings"]
        assert warning.startswith("CHAPERONE_DISABLE_PLUGINS (from environment): ")
        assert "the built-in plugin 'chaperone.builtin.routing' cannot be disabled" in warning


class TestBadOptions:
    """A wrong option is exit 2 with a message, nothing else."""

    @pytest.mark.parametrize(
        ("name", "says"),
        [
            ("bad-severity", "'dire' is not one of"),
            ("bad-priority", "'urgent' is not one of"),
            ("bad-label", "expected KEY=VALUE"),
            ("bad-type", "alert type must be lower-case"),
            ("no-type", "Missing option '--type'"),
        ],
    )
    def test_exit_2(self, runs: Runs, name: str, says: str) -> None:
        """The option's problem is named on standard error; nothing on standard output."""
        result = runs[name]
        assert result.returncode == 2, str(result)
        assert says in result.stderr, str(result)
        assert result.stdout == ""

    def test_bad_config_is_exit_2(self, runs: Runs) -> None:
        """A route without channels is a configuration error: exit 2, naming it."""
        result = runs["bad-config"]
        assert result.returncode == 2, str(result)
        assert "alerting.routes[0].channels" in result.stderr


class TestRouteSettingsAndSecrets:
    """Per-route channel settings through the fixture plugin's webhook channel."""

    def test_labels_continue_and_masked_url(self, runs: Runs) -> None:
        """team=payments: 'audit' (continue) and 'payments-team' both match; the
        webhook's URL shows masked; the runbook is the type's; nothing is sent.
        """
        require_fixture_plugins()
        data = ok_json(runs["webhook-json"])
        assert data["alert"]["labels"] == {"team": "payments"}
        audit, payments, never = data["routing"]["routes"]
        assert (audit["status"], audit["continue"]) == ("matched", True)
        assert audit["why"] == ["no match table: matches every alert"]
        assert payments["status"] == "matched"
        assert payments["why"] == [
            "team 'payments' matches 'payments'",
            "severity 'error' matches 'critical' or 'error'",
        ]
        assert payments["settings"] == {"webhook": {"url": "********"}}
        assert never["status"] == "not considered"
        runbook = "https://docs.example.com/runbooks/job-stuck"
        assert data["destinations"] == [
            {"channel": "database", "route": "audit", "settings": {}, "runbook_url": runbook},
            {
                "channel": "webhook",
                "route": "payments-team",
                "settings": {"url": "********"},
                "runbook_url": runbook,
            },
        ]
        assert data["warnings"] == []
        assert runs.webhook_requests == 0

    def test_text_says_it_continues(self, runs: Runs) -> None:
        """The text form says the audit route continues and the last route was not
        considered, and masks the URL.
        """
        require_fixture_plugins()
        result = runs["webhook"]
        assert result.returncode == 0, str(result)
        assert "✓ route 'audit' matched:" in result.stdout
        assert "✓ route 'payments-team' matched:" in result.stdout
        assert "- route 'never' not considered: route 'payments-team' matched first" in (
            result.stdout
        )
        assert "continues: the routes after it are tried too" in result.stdout
        assert "channels: webhook (url=********)" in result.stdout
        assert "webhook (route payments-team) with url=********" in result.stdout

    def test_other_team_falls_through(self, runs: Runs) -> None:
        """team=ops: only the audit route matches, then 'never' (a catch-all)."""
        require_fixture_plugins()
        result = runs["webhook-ops"]
        assert result.returncode == 0, str(result)
        assert "team 'ops' does not match 'payments'" in result.stdout
        assert "✓ route 'never' matched:" in result.stdout

    def test_secret_never_printed(self, runs: Runs) -> None:
        """The route's webhook URL appears in no output of any run."""
        require_fixture_plugins()
        for name in ("webhook", "webhook-json", "webhook-ops"):
            result = runs[name]
            assert TOKEN not in result.stdout + result.stderr, str(result)


# -------------------------------------------------------------------------------------
# A plugin that answers before the built-ins (in process: no installed plugin does)
# -------------------------------------------------------------------------------------


class Opinionated:
    """Gives every alert priority low and sends it to the log channel only."""

    @chaperone.hookimpl
    def chaperone_alert_priority(self, alert: Alert) -> Priority:
        return Priority.LOW

    @chaperone.hookimpl
    def chaperone_route(self, alert: Alert) -> list[Destination]:
        return [Destination(channel="log", route="by-plugin")]


@pytest.fixture
def in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    """A CliRunner in ``tmp_path`` (the issue's config) with plugin ``opinionated``
    registered; logging restored after.
    """
    (tmp_path / "chaperone.toml").write_text(ISSUE_EXAMPLE_CONFIG)
    monkeypatch.chdir(tmp_path)
    for name in [name for name in os.environ if name.startswith("CHAPERONE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("CHAPERONE_STORE", "memory://")
    monkeypatch.setattr(
        "chaperone._chaperone.PluginHost",
        lambda disabled=(): PluginHost(
            disabled=disabled, entry_points=False, extra=[("opinionated", Opinionated())]
        ),
    )
    previous = structlog.get_config() if structlog.is_configured() else None
    try:
        yield CliRunner()
    finally:
        if previous is None:
            structlog.reset_defaults()
        else:
            structlog.configure(**previous)


class TestPluginDecides:
    """When a plugin's hook answers first, the dry run says that plugin decided."""

    def test_plugin_named(self, in_process: CliRunner) -> None:
        """Priority and routing both come from the plugin, and the destinations are its."""
        result = in_process.invoke(
            cli,
            ["route", "--type", "job_stuck", "--job-class", PAYMENT_SYNC, "--json"],
            catch_exceptions=False,
        )
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert data["priority"]["priority"] == "low"
        assert data["priority"]["decided_by"] == "opinionated"
        assert data["priority"]["builtin"] is False
        assert data["routing"] == {
            "decided_by": "opinionated",
            "builtin": False,
            "reason": "the plugin chose the destinations; the built-in routes were not asked",
        }
        assert data["destinations"] == [
            {"channel": "log", "route": "by-plugin", "settings": {}, "runbook_url": None}
        ]

    def test_plugin_named_in_text(self, in_process: CliRunner) -> None:
        """The text form names the plugin for both steps."""
        result = in_process.invoke(
            cli, ["route", "--type", "job_stuck", "--job-class", PAYMENT_SYNC]
        )
        assert result.exit_code == 0, result.output
        assert "Priority: low (built as normal)" in result.stdout
        assert "decided by plugin 'opinionated': the plugin says low" in result.stdout
        assert "Routing: decided by plugin 'opinionated'" in result.stdout
        assert "  log (route by-plugin)" in result.stdout
