"""The ``chaperone`` command line, run as a person runs it: the real console script in a
subprocess, a fresh SQLite file, and real HTTP servers on 127.0.0.1 for the webhook
channel of the fixture plugin chaperone-testwebhook.

Most of a run is Python starting up, so independent commands are started together by
module-scoped fixtures and each test checks one aspect of their results.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

import attrs
import pytest

_TESTS = str(Path(__file__).resolve().parent.parent)
if _TESTS not in sys.path:  # until pytest's configuration says pythonpath = ["tests"]
    sys.path.insert(0, _TESTS)

from chaperone.testing.servers import RecordedRequest, RecordingServer, Reply  # noqa: E402
from helpers.cli import (  # noqa: E402
    STORE_FILE,
    CliResult,
    Invocation,
    clean_environ,
    require_fixture_plugins,
    run_cli,
    run_many,
    stored_history,
)
from helpers.processes import dispatch  # noqa: E402

ALERT_TYPES = {"job_stuck", "job_timeout", "circuit_breaker", "resource_violation"}
SAMPLES = ("stuck", "timeout", "circuit-breaker", "resource")
HISTORY_FIELDS = {"type", "key", "channel", "status", "occurred_at"}


def verdicts(reports: list[dict[str, Any]]) -> list[str]:
    """The filters' verdict on each event a dispatch worker raised."""
    return [report["alerts"][0]["verdict"] for report in reports]


# -- the README's flow ------------------------------------------------------------------


@attrs.frozen
class MainFlow:
    """``test-alerts`` on the default store, then ``history`` in several forms."""

    state_home: Path
    sent: CliResult
    history: CliResult
    limited: CliResult
    table: CliResult


@pytest.fixture(scope="module")
def main_flow(tmp_path_factory: pytest.TempPathFactory) -> MainFlow:
    """The README's flow with nothing configured: the store is the default SQLite file
    (under an XDG_STATE_HOME in a temporary folder), then the history is read back.
    """
    tmp_path = tmp_path_factory.mktemp("main-flow")
    env = clean_environ(tmp_path, XDG_STATE_HOME=str(tmp_path / "state"))
    del env["CHAPERONE_STORE"]
    sent = run_cli("test-alerts", cwd=tmp_path, env=env)
    reads = run_many(
        {
            "history": Invocation(("history", "--json"), tmp_path, env),
            "limited": Invocation(("history", "--json", "--limit", "3"), tmp_path, env),
            "table": Invocation(("history",), tmp_path, env),
        }
    )
    return MainFlow(
        state_home=tmp_path / "state",
        sent=sent,
        history=reads["history"],
        limited=reads["limited"],
        table=reads["table"],
    )


class TestMainFlow:
    """test-alerts delivers a sample of each type; history reads them back."""

    def test_test_alerts_delivers_every_type(self, main_flow: MainFlow) -> None:
        """test-alerts exits 0, reporting each of the four types delivered to both channels."""
        sent = main_flow.sent
        assert sent.returncode == 0, str(sent)
        lines = [line for line in sent.stdout.splitlines() if line.startswith("✓")]
        assert len(lines) == 8, str(sent)
        for alert_type in ALERT_TYPES:
            for channel in ("log", "database"):
                assert any(alert_type in line and f"→ {channel}:" in line for line in lines)
        assert sent.stdout.splitlines()[-1] == "8 delivered, 0 failed"

    def test_log_channel_writes_to_stderr(self, main_flow: MainFlow) -> None:
        """The log channel's lines go to standard error, one per alert."""
        assert main_flow.sent.stderr.count("[FIRING]") == 4, str(main_flow.sent)
        assert "[FIRING]" not in main_flow.sent.stdout

    def test_default_store_is_under_xdg_state_home(self, main_flow: MainFlow) -> None:
        """With no CHAPERONE_STORE, the SQLite file is $XDG_STATE_HOME/chaperone/..."""
        assert (main_flow.state_home / "chaperone" / "chaperone.sqlite3").is_file()

    def test_history_lists_every_delivery(self, main_flow: MainFlow) -> None:
        """history --json lists one record per alert and channel, newest first."""
        history = main_flow.history
        assert history.returncode == 0, str(history)
        records = history.json()
        assert len(records) == 8
        assert {(r["type"], r["channel"]) for r in records} == {
            (alert_type, channel) for alert_type in ALERT_TYPES for channel in ("log", "database")
        }
        for record in records:
            assert record.keys() >= HISTORY_FIELDS
            assert record["status"] == "delivered"
            assert datetime.fromisoformat(record["occurred_at"]).tzinfo is not None
        recorded = [record["recorded_at"] for record in records]
        assert recorded == sorted(recorded, reverse=True)
        assert records[0]["type"] == "resource_violation"
        assert records[-1]["type"] == "job_stuck"

    def test_history_keys_match_the_alerts(self, main_flow: MainFlow) -> None:
        """Both channels' records of one alert share its key: the breaker's is its
        service, the jobs' are supervision ids (the resource one with its kind).
        """
        keys: dict[str, set[str]] = {}
        for record in main_flow.history.json():
            keys.setdefault(record["type"], set()).add(record["key"])
        assert all(len(found) == 1 for found in keys.values()), keys
        assert keys["circuit_breaker"] == {"payment-gateway"}
        (stuck_key,) = keys["job_stuck"]
        assert str(uuid.UUID(stuck_key)) == stuck_key
        (resource_key,) = keys["resource_violation"]
        assert resource_key.endswith(":memory")

    def test_limit(self, main_flow: MainFlow) -> None:
        """--limit 3 gives the three newest records."""
        assert main_flow.limited.returncode == 0, str(main_flow.limited)
        assert main_flow.limited.json() == main_flow.history.json()[:3]

    def test_table(self, main_flow: MainFlow) -> None:
        """history without --json prints a table naming each type and channel."""
        table = main_flow.table
        assert table.returncode == 0, str(table)
        assert "Alert history" in table.stdout
        for word in (*ALERT_TYPES, "log", "database", "payment-gateway"):
            assert word in table.stdout


# -- independent commands, run together ---------------------------------------------------

USAGE_ERRORS: dict[str, tuple[tuple[str, ...], str]] = {
    "clear-nothing": (("ratelimit", "clear"), "give --type and --key together, or --all"),
    "clear-all-and-type": (
        ("ratelimit", "clear", "--all", "--type", "job_stuck"),
        "leave out --type and --key",
    ),
    "limit-zero": (("history", "--limit", "0"), "--limit"),
    "unknown-option": (("test-alerts", "--bogus"), "No such option"),
}


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, CliResult]]:
    """Run every independent command at once, each in its own folder with its own store."""
    invocations: dict[str, Invocation] = {}
    folders: dict[str, Path] = {}

    def add(name: str, *args: str, **variables: str) -> None:
        folders[name] = tmp_path_factory.mktemp(name)
        invocations[name] = Invocation(
            args, folders[name], clean_environ(folders[name], **variables)
        )

    add("samples", "test-alerts", "stuck", "timeout", "--json")
    add("channel-log", "test-alerts", "--channel", "log", "--json")
    add("channel-log-routed", "test-alerts", "--channel", "log", "--json")
    (folders["channel-log-routed"] / "chaperone.toml").write_text(
        '[[alerting.routes]]\nname = "pager"\nmatch = { type = "circuit_breaker" }\n'
        'channels = ["database"]\n',
        encoding="utf-8",
    )
    add("unknown-sample", "test-alerts", "bogus")
    add("unknown-channel", "test-alerts", "--channel", "nosuch")
    # A slack plugin installed in this environment is disabled, so the test means the same.
    add(
        "slack",
        "test-alerts",
        CHAPERONE_ALERT_CHANNELS="slack",
        CHAPERONE_DISABLE_PLUGINS="slack",
    )
    for name, (args, _) in USAGE_ERRORS.items():
        add(name, *args)
    results = run_many(invocations)
    return {name: (folders[name], result) for name, result in results.items()}


class TestTestAlertsOptions:
    """Choosing samples and channels, and what is refused."""

    def test_chosen_samples_only(self, batch: dict[str, tuple[Path, CliResult]]) -> None:
        """``test-alerts stuck timeout`` sends those two types and nothing else."""
        _, result = batch["samples"]
        assert result.returncode == 0, str(result)
        rows = result.json()
        assert [(row["sample"], row["type"], row["channel"]) for row in rows] == [
            ("stuck", "job_stuck", "log"),
            ("stuck", "job_stuck", "database"),
            ("timeout", "job_timeout", "log"),
            ("timeout", "job_timeout", "database"),
        ]
        assert all(row["status"] == "delivered" for row in rows)

    def test_channel_option_sends_there_only(
        self, batch: dict[str, tuple[Path, CliResult]]
    ) -> None:
        """``--channel log`` delivers to log alone; database, not asked, records nothing."""
        folder, result = batch["channel-log"]
        assert result.returncode == 0, str(result)
        rows = result.json()
        assert len(rows) == 4
        assert {row["channel"] for row in rows} == {"log"}
        assert {row["type"] for row in rows} == ALERT_TYPES
        assert stored_history(folder) == []

    def test_channel_option_overrides_the_routes(
        self, batch: dict[str, tuple[Path, CliResult]]
    ) -> None:
        """``--channel log`` sends there only, even the sample a route would send to
        another channel: a test of one channel pages nobody through a route."""
        folder, result = batch["channel-log-routed"]
        assert result.returncode == 0, str(result)
        rows = result.json()
        assert {row["channel"] for row in rows} == {"log"}
        assert {row["type"] for row in rows} == ALERT_TYPES
        assert stored_history(folder) == []

    def test_unknown_sample_lists_the_valid_ones(
        self, batch: dict[str, tuple[Path, CliResult]]
    ) -> None:
        """An unknown sample type exits 2 naming every valid one."""
        _, result = batch["unknown-sample"]
        assert result.returncode == 2, str(result)
        assert "'bogus'" in result.stderr
        for sample in SAMPLES:
            assert f"'{sample}'" in result.stderr
        assert result.stdout == ""

    def test_unknown_channel_lists_installed_ones(
        self, batch: dict[str, tuple[Path, CliResult]]
    ) -> None:
        """An unknown --channel exits 2 naming the installed channels; nothing is sent."""
        folder, result = batch["unknown-channel"]
        assert result.returncode == 2, str(result)
        assert "no installed plugin provides channel 'nosuch'" in result.stderr
        assert "pip install chaperone-nosuch" in result.stderr
        installed = result.stderr.split("installed channels: ", 1)[1].split(")")[0]
        assert {"database", "log"} <= set(installed.split(", "))
        assert result.stdout == ""
        assert stored_history(folder) == []

    def test_configured_channel_without_plugin_names_the_package(
        self, batch: dict[str, tuple[Path, CliResult]]
    ) -> None:
        """CHAPERONE_ALERT_CHANNELS=slack with no slack plugin exits 2 naming the
        setting, where it came from, and the package chaperone-slack.
        """
        _, result = batch["slack"]
        assert result.returncode == 2, str(result)
        assert "configuration error" in result.stderr
        assert "CHAPERONE_ALERT_CHANNELS (from environment)" in result.stderr
        assert "pip install chaperone-slack" in result.stderr
        assert result.stdout == ""


class TestUsageErrors:
    """A wrong command line exits 2 with a message and leaves the store alone."""

    @pytest.mark.parametrize("name", list(USAGE_ERRORS))
    def test_exits_2(self, batch: dict[str, tuple[Path, CliResult]], name: str) -> None:
        """The command exits 2 and says what is wrong on standard error."""
        folder, result = batch[name]
        assert result.returncode == 2, str(result)
        assert USAGE_ERRORS[name][1] in result.stderr
        assert result.stdout == ""
        assert not (folder / STORE_FILE).exists()


# -- delivery through the webhook plugin ------------------------------------------------


@attrs.frozen
class WebhookRun:
    """One test-alerts run against a scripted server."""

    folder: Path
    result: CliResult
    requests: list[RecordedRequest]


@pytest.fixture(scope="module")
def webhook_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, WebhookRun]]:
    """test-alerts against three servers at once: one answering 400 to everything, one
    answering 500 then 200, one answering 429 with Retry-After: 1 then 200. Retries wait
    no backoff, so only Retry-After can delay one.
    """
    require_fixture_plugins()
    scripts = {
        "permanent": (RecordingServer(default=Reply(status=400, body="invalid_payload")), ()),
        "transient": (
            RecordingServer([Reply(status=500, body="oops")]),
            ("stuck", "--json"),
        ),
        "retry-after": (
            RecordingServer([Reply(status=429, body="slow", headers={"Retry-After": "1"})]),
            ("stuck", "--json"),
        ),
    }
    with ExitStack() as stack:
        invocations = {}
        folders = {}
        for name, (server, args) in scripts.items():
            stack.enter_context(server)
            folders[name] = tmp_path_factory.mktemp(name)
            env = clean_environ(
                folders[name],
                CHAPERONE_ALERT_CHANNELS="webhook,database",
                CHAPERONE_WEBHOOK_URL=server.url_for("/hook"),
                CHAPERONE_DELIVERY_MAX_BACKOFF="0",
            )
            invocations[name] = Invocation(("test-alerts", *args), folders[name], env)
        results = run_many(invocations)
        yield {
            name: WebhookRun(folders[name], results[name], server.requests)
            for name, (server, _) in scripts.items()
        }


class TestWebhookDelivery:
    """Delivery through an installed channel plugin to a real HTTP server."""

    def test_permanent_failure_exits_1(self, webhook_runs: dict[str, WebhookRun]) -> None:
        """A server answering 400: test-alerts exits 1, reporting each failure with the
        server's answer, and still delivers to the other channel.
        """
        result = webhook_runs["permanent"].result
        assert result.returncode == 1, str(result)
        failures = [line for line in result.stdout.splitlines() if "→ webhook: failed" in line]
        assert len(failures) == 4, str(result)
        assert all(line.startswith("✗") for line in failures)
        assert all("HTTP 400: invalid_payload" in line for line in failures)
        assert result.stdout.splitlines()[-1] == "4 delivered, 4 failed"
        assert "alert delivery failed" in result.stderr

    def test_permanent_failure_is_not_retried(self, webhook_runs: dict[str, WebhookRun]) -> None:
        """The 400 server receives exactly one request per alert."""
        requests = webhook_runs["permanent"].requests
        assert len(requests) == 4
        assert {request.path for request in requests} == {"/hook"}
        bodies: list[Any] = [request.json() for request in requests]
        assert {body["alert"]["type"] for body in bodies} == ALERT_TYPES
        assert {body["attempt"] for body in bodies} == {1}

    def test_permanent_failure_is_in_history(self, webhook_runs: dict[str, WebhookRun]) -> None:
        """History records each webhook failure, after one attempt, with the reason."""
        records = stored_history(webhook_runs["permanent"].folder)
        webhook = [r for r in records if r["channel"] == "webhook"]
        assert [r["status"] for r in webhook] == ["failed"] * 4
        assert {r["attempts"] for r in webhook} == {1}
        assert {r["detail"] for r in webhook} == {"HTTP 400: invalid_payload"}
        assert {r["type"] for r in webhook} == ALERT_TYPES

    def test_transient_failure_is_retried(self, webhook_runs: dict[str, WebhookRun]) -> None:
        """500 then 200: the alert is sent again and delivered on the second attempt."""
        run = webhook_runs["transient"]
        assert run.result.returncode == 0, str(run.result)
        bodies: list[Any] = [request.json() for request in run.requests]
        assert [body["attempt"] for body in bodies] == [1, 2]
        assert bodies[0]["alert"] == bodies[1]["alert"]
        (webhook,) = [row for row in run.result.json() if row["channel"] == "webhook"]
        assert webhook["status"] == "delivered"
        assert webhook["attempts"] == 2
        assert "will retry" in run.result.stderr

    def test_payload_carries_the_alert(self, webhook_runs: dict[str, WebhookRun]) -> None:
        """The webhook receives the alert as JSON, as the plugin renders it."""
        request = webhook_runs["transient"].requests[-1]
        assert request.method == "POST"
        assert request.headers["Content-Type"] == "application/json"
        body: Any = request.json()
        assert body["alert"]["type"] == "job_stuck"
        assert body["alert"]["job_class"] == "datasets.process_large"
        assert body["alert"]["status"] == "firing"
        assert body["route"] == "default"

    def test_retry_after_is_honoured(self, webhook_runs: dict[str, WebhookRun]) -> None:
        """429 with Retry-After: 1: the retry comes no sooner than a second later."""
        run = webhook_runs["retry-after"]
        assert run.result.returncode == 0, str(run.result)
        assert len(run.requests) == 2
        gap = run.requests[1].received_at - run.requests[0].received_at
        assert 1.0 <= gap < 10.0


# -- rate limits -------------------------------------------------------------------------


class TestRatelimitClear:
    """``chaperone ratelimit clear`` forgets what the rate-limit filter remembered."""

    def test_clear_one_then_all(self, tmp_path: Path) -> None:
        """Clearing one type and key lets that alert through again, and only that one;
        clearing an alert never sent says so; --all forgets every mark and says how many.
        """
        env = clean_environ(tmp_path, CHAPERONE_ALERT_CHANNELS="database")
        first, other = str(uuid.uuid4()), str(uuid.uuid4())
        assert verdicts(dispatch(first, other, first, cwd=tmp_path, env=env)) == [
            "send",
            "send",
            "suppress",
        ]

        cleared = run_many(
            {
                "one": Invocation(
                    ("ratelimit", "clear", "--type", "job_stuck", "--key", first), tmp_path, env
                ),
                "unset": Invocation(
                    ("ratelimit", "clear", "--type", "job_stuck", "--key", "nope"), tmp_path, env
                ),
            }
        )
        assert cleared["one"].returncode == 0, str(cleared["one"])
        assert cleared["one"].stdout.strip() == f"cleared the rate limit of job_stuck:{first}"
        assert cleared["unset"].returncode == 0, str(cleared["unset"])
        assert cleared["unset"].stdout.strip() == "no rate limit was set for job_stuck:nope"

        assert verdicts(dispatch(first, other, cwd=tmp_path, env=env)) == ["send", "suppress"]

        result = run_cli("ratelimit", "clear", "--all", cwd=tmp_path, env=env)
        assert result.returncode == 0, str(result)
        assert result.stdout.strip() == "cleared 2 rate limit(s)"

        assert verdicts(dispatch(first, other, other, cwd=tmp_path, env=env)) == [
            "send",
            "send",
            "suppress",
        ]
        delivered = [r for r in stored_history(tmp_path) if r["type"] == "job_stuck"]
        assert len(delivered) == 5
