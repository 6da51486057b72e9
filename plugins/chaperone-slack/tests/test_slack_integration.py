"""The ``slack`` channel end to end: the real ``chaperone`` CLI in subprocesses, posting to
real HTTP servers on 127.0.0.1 that answer as Slack does (``ok``, ``429``, ``500``,
``400``).

Every command is independent, so the module starts them all at once and each test reads
the run it is about.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest

from chaperone.testing.cli import STORE_FILE, CliResult, Invocation, clean_environ, run_many
from chaperone.testing.servers import RecordedRequest, RecordingServer, Reply


@attrs.frozen
class Plan:
    """One command to run: its arguments, extra environment, and the Slack it talks to."""

    args: tuple[str, ...]
    env: Mapping[str, str] = attrs.field(factory=dict)
    replies: tuple[Reply, ...] | None = None
    """None: no server; otherwise the scripted answers (then ``200 ok``)."""
    default: Reply = attrs.field(factory=Reply)
    via_toml: bool = False
    """Give the webhook URL in chaperone.toml instead of the environment."""


@attrs.frozen
class Run(CliResult):
    """How one planned command went."""

    requests: list[RecordedRequest]
    secrets: list[str]
    stored: bytes
    """Every byte of the SQLite store the run left (history and all)."""

    def rows(self) -> list[dict[str, Any]]:
        """The rows ``test-alerts --json`` printed."""
        rows = json.loads(self.stdout)
        assert isinstance(rows, list)
        return rows

    def payloads(self) -> list[dict[str, Any]]:
        """The JSON bodies the server received, in order."""
        bodies = [request.json() for request in self.requests]
        assert all(isinstance(body, dict) for body in bodies)
        return bodies  # type: ignore[return-value]


PLANS: dict[str, Plan] = {
    "delivered": Plan(("test-alerts", "--channel", "slack", "--json"), replies=()),
    "rate_limited": Plan(
        ("test-alerts", "stuck", "--channel", "slack", "--json"),
        replies=(Reply(status=429, body="rate_limited", headers={"Retry-After": "2"}),),
    ),
    "server_error": Plan(
        ("test-alerts", "timeout", "--channel", "slack", "--json"),
        replies=(Reply(status=500, body="rollup_error"),),
        via_toml=True,
    ),
    "refused": Plan(
        ("test-alerts", "--channel", "slack", "--json"),
        replies=(),
        default=Reply.echo(400),
    ),
    "plugins": Plan(("plugins", "--json")),
    "disabled": Plan(
        ("config", "check"),
        env={
            "CHAPERONE_DISABLE_PLUGINS": "slack",
            "CHAPERONE_ALERT_CHANNELS": "slack",
            "CHAPERONE_SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0D/B0D/disabledsecret",
        },
    ),
    "insecure_url": Plan(
        ("config", "check"),
        env={
            "CHAPERONE_ALERT_CHANNELS": "slack",
            "CHAPERONE_SLACK_WEBHOOK_URL": "http://hooks.slack.com/services/T0I/B0I/insecuresecret",
        },
    ),
}


def stored_bytes(folder: Path) -> bytes:
    """The SQLite store's files in ``folder``, WAL included."""
    return b"".join(path.read_bytes() for path in sorted(folder.glob(f"{STORE_FILE}*")))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Run]]:
    """Run every plan at once, each in its own folder with its own server."""
    with contextlib.ExitStack() as stack:
        invocations: dict[str, Invocation] = {}
        servers: dict[str, RecordingServer] = {}
        secrets: dict[str, list[str]] = {}
        for name, plan in PLANS.items():
            folder = tmp_path_factory.mktemp(name)
            env = dict(plan.env)
            secrets[name] = [value for key, value in env.items() if key.endswith("WEBHOOK_URL")]
            if plan.replies is not None:
                server = RecordingServer(plan.replies, default=plan.default)
                servers[name] = stack.enter_context(server)
                token = f"{name.replace('_', '')}token0123456789"
                url = server.url_for(f"/services/T0{name.upper()}/B0SLACK/{token}")
                secrets[name] = [url, token, f"/services/T0{name.upper()}/B0SLACK/{token}"]
                if plan.via_toml:
                    (folder / "chaperone.toml").write_text(
                        f'[channels.slack]\nwebhook_url = "{url}"\n'
                    )
                else:
                    env["CHAPERONE_SLACK_WEBHOOK_URL"] = url
            invocations[name] = Invocation(plan.args, folder, clean_environ(folder, **env))
        yield {
            name: Run(
                **attrs.asdict(result, recurse=False),
                requests=servers[name].requests if name in servers else [],
                secrets=secrets[name],
                stored=stored_bytes(invocations[name].cwd),
            )
            for name, result in run_many(invocations, parallel=None).items()
        }


def assert_no_secret(run: Run) -> None:
    """No piece of the webhook URL shows in the output or the store."""
    assert run.secrets
    for secret in run.secrets:
        assert secret not in run.stdout, "the webhook URL is in stdout"
        assert secret not in run.stderr, "the webhook URL is in stderr"
        assert secret.encode() not in run.stored, "the webhook URL is in the store"


def by_text(run: Run) -> dict[str, dict[str, Any]]:
    """The payloads a run posted, by their ``text``."""
    return {payload["text"]: payload for payload in run.payloads()}


class TestDelivery:
    """``chaperone test-alerts --channel slack`` against a healthy Slack."""

    def test_all_four_alert_types_delivered(self, runs: dict[str, Run]) -> None:
        """Each sample is delivered in one request, and the run exits 0."""
        run = runs["delivered"]
        assert run.returncode == 0, run
        rows = run.rows()
        assert [row["sample"] for row in rows] == [
            "stuck",
            "timeout",
            "circuit-breaker",
            "resource",
        ]
        assert all(row["status"] == "delivered" and row["attempts"] == 1 for row in rows), run
        assert len(run.requests) == 4
        assert all(request.method == "POST" for request in run.requests)
        assert all(
            request.headers["Content-Type"] == "application/json" for request in run.requests
        )

    def test_payloads_in_the_seed_format(self, runs: dict[str, Run]) -> None:
        """Emoji and alert type as text, subject as title, colour by severity, footer, ts."""
        payloads = by_text(runs["delivered"])
        assert set(payloads) == {
            "🚨 Job Stuck",
            "🚨 Job Timeout",
            "🚨 Circuit Breaker Opened",
            "⚠️ Resource Violation",
        }
        expected = {
            "🚨 Job Stuck": ("datasets.process_large", "danger"),
            "🚨 Job Timeout": ("reports.build_monthly", "danger"),
            "🚨 Circuit Breaker Opened": ("payment-gateway", "danger"),
            "⚠️ Resource Violation": ("feeds.import_customers", "warning"),
        }
        for text, payload in payloads.items():
            assert "channel" not in payload
            (attachment,) = payload["attachments"]
            assert (attachment["title"], attachment["color"]) == expected[text]
            assert attachment["footer"] == "Chaperone Job Supervision"
            assert isinstance(attachment["ts"], int)
            assert attachment["text"]
            assert attachment["fields"]

    def test_circuit_breaker_fields(self, runs: dict[str, Run]) -> None:
        """The circuit breaker's message carries the seed's fields."""
        (attachment,) = by_text(runs["delivered"])["🚨 Circuit Breaker Opened"]["attachments"]
        fields = {field["title"]: field["value"] for field in attachment["fields"]}
        assert fields["Service"] == "payment-gateway"
        assert fields["Failure Count"] == "10"
        assert fields["Status"] == "Service Unavailable"
        assert {"Opened At", "Next Trial At"} <= set(fields)

    def test_no_secret_shown(self, runs: dict[str, Run]) -> None:
        """The webhook URL shows nowhere: not in output, logs or history."""
        assert_no_secret(runs["delivered"])


class TestFailures:
    """Slack refusing or failing: retried when transient, never when permanent."""

    def test_429_waits_for_retry_after(self, runs: dict[str, Run]) -> None:
        """After ``429`` with ``Retry-After: 2`` the next request comes 2 s later at the
        earliest, and the alert is delivered.
        """
        run = runs["rate_limited"]
        assert run.returncode == 0, run
        first, second = run.requests
        assert second.received_at - first.received_at >= 2.0
        assert first.body == second.body
        (row,) = run.rows()
        assert (row["status"], row["attempts"]) == ("delivered", 2), run
        assert_no_secret(run)

    def test_5xx_is_retried(self, runs: dict[str, Run]) -> None:
        """``500 rollup_error`` is retried and the alert delivered (URL from the TOML file)."""
        run = runs["server_error"]
        assert run.returncode == 0, run
        assert len(run.requests) == 2
        (row,) = run.rows()
        assert (row["status"], row["attempts"]) == ("delivered", 2), run
        assert_no_secret(run)

    def test_400_fails_without_retry(self, runs: dict[str, Run]) -> None:
        """``400`` fails each alert after exactly one request, and the run exits 1."""
        run = runs["refused"]
        assert run.returncode == 1, run
        rows = run.rows()
        assert len(rows) == 4
        assert all(row["status"] == "failed" and row["attempts"] == 1 for row in rows), run
        assert all("HTTP 400" in row["detail"] for row in rows)
        assert len(run.requests) == 4

    def test_quoted_url_is_not_shown(self, runs: dict[str, Run]) -> None:
        """An error body quoting the webhook URL does not carry it into output or history."""
        run = runs["refused"]
        assert "invalid_payload" in run.stdout
        assert_no_secret(run)


class TestDiscoveryAndConfig:
    """The plugin is found, can be disabled, and refuses a bad URL at start-up."""

    def test_listed_by_chaperone_plugins(self, runs: dict[str, Run]) -> None:
        """``chaperone plugins --json`` lists the slack plugin, loaded, with its channel."""
        run = runs["plugins"]
        assert run.returncode == 0, run
        plugins = {plugin["name"]: plugin for plugin in json.loads(run.stdout)}
        slack = plugins["slack"]
        assert slack["distribution"] == "chaperone-slack"
        assert slack["channels"] == ["slack"]
        assert slack["status"] == "ok"

    def test_disabled_plugin_names_the_package(self, runs: dict[str, Run]) -> None:
        """With the plugin disabled, a config naming slack fails with the install hint."""
        run = runs["disabled"]
        assert run.returncode == 2, run
        assert "chaperone-slack" in run.stdout + run.stderr
        assert_no_secret(run)

    def test_insecure_url_refused(self, runs: dict[str, Run]) -> None:
        """A plain-http webhook off loopback fails at start-up, naming the variable only."""
        run = runs["insecure_url"]
        assert run.returncode == 2, run
        output = run.stdout + run.stderr
        assert "CHAPERONE_SLACK_WEBHOOK_URL" in output
        assert "https" in output
        assert_no_secret(run)
