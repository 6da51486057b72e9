"""``chaperone test-alerts --channel discord`` as a person runs it: the real console
script in a subprocess, a clean environment, a fresh SQLite store, and a real HTTP server
on 127.0.0.1 standing in for Discord (answering 200, 429, 400, 401 or 5xx as scripted).

Most of a run is Python starting up, so every command is started at once by one
module-scoped fixture and each test checks one aspect of the results.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

from chaperone.testing.cli import (
    STORE_FILE,
    CliResult,
    Invocation,
    clean_environ,
    run_many,
    stored_history,
)
from chaperone.testing.servers import RecordedRequest, RecordingServer, Reply

TOKEN = "aW50ZWdyYXRpb24tdG9rZW4-Zz_9"  # noqa: S105 - made up for the tests
HOOK_PATH = f"/api/webhooks/424242424242/{TOKEN}"
SAMPLES = ("stuck", "timeout", "circuit-breaker", "resource")
RED, ORANGE = 15158332, 15105570
DISCORD_MESSAGE = Reply(
    status=200, body='{"id": "1", "type": 0}', headers={"Content-Type": "application/json"}
)


def rate_limited(retry_after: float, header: str) -> Reply:
    """A 429 as Discord sends it: JSON body and Retry-After header."""
    body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": False}
    return Reply(
        status=429,
        body=json.dumps(body),
        headers={"Retry-After": header, "Content-Type": "application/json"},
    )


@attrs.frozen
class Run(CliResult):
    """One finished ``chaperone`` command, its folder, and what its server received."""

    folder: Path
    requests: list[RecordedRequest]

    def deliveries(self, channel: str = "discord") -> list[dict[str, Any]]:
        """The ``--json`` rows of ``channel``."""
        return [row for row in self.json() if row["channel"] == channel]

    def bodies(self) -> list[Any]:
        """Each request's JSON body."""
        return [request.json() for request in self.requests]


@attrs.frozen
class Plan:
    """A command to run, and how the server its Discord webhook points at answers (no
    server without a default reply).
    """

    args: tuple[str, ...]
    default: Reply | None = None
    replies: Sequence[Reply] = ()
    env: Mapping[str, str] = attrs.field(factory=dict)


JSON_TO_BOTH = ("--channel", "discord", "--channel", "database", "--json")
PLANS = {
    "delivered": Plan(
        ("test-alerts", *JSON_TO_BOTH),
        DISCORD_MESSAGE,
        env={"CHAPERONE_DISCORD_USERNAME": "Chaperone"},
    ),
    "rate-limited": Plan(
        ("test-alerts", "stuck", "timeout", *JSON_TO_BOTH),
        DISCORD_MESSAGE,
        # stuck: the header says more than the body; timeout: the body in milliseconds
        [rate_limited(1.25, "2"), DISCORD_MESSAGE, rate_limited(2000, "2")],
    ),
    "refused": Plan(
        ("test-alerts", "--channel", "discord", "--channel", "database"),
        Reply(status=400, body='{"message": "Invalid Form Body", "code": 50035}'),
        [
            Reply(status=401, body='{"message": "Invalid Webhook Token", "code": 50027}'),
            Reply(status=403, body='{"message": "Missing Access", "code": 50001}'),
        ],
    ),
    "server-error": Plan(
        ("test-alerts", "circuit-breaker", *JSON_TO_BOTH),
        DISCORD_MESSAGE,
        [Reply(status=500, body="oops"), Reply(status=502, body="bad gateway")],
    ),
    "plugins": Plan(("plugins", "--json")),
    "disabled": Plan(
        ("config", "check"),
        env={"CHAPERONE_ALERT_CHANNELS": "discord", "CHAPERONE_DISABLE_PLUGINS": "discord"},
    ),
    "bad-url": Plan(
        ("config", "check"),
        env={
            "CHAPERONE_ALERT_CHANNELS": "discord",
            "CHAPERONE_DISCORD_WEBHOOK_URL": f"https://discord.example/api/webhooks/1/{TOKEN}",
        },
    ),
}
"""Every command the tests look at, by name."""


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Run]]:
    """Run every plan at once (each server answers as scripted; retries wait no backoff,
    so only a Retry-After can delay one); yield the results by name.
    """
    with ExitStack() as stack:
        invocations = {}
        servers = {}
        for name, plan in PLANS.items():
            folder = tmp_path_factory.mktemp(name)
            variables = {"CHAPERONE_DELIVERY_MAX_BACKOFF": "0", **plan.env}
            if plan.default is not None:
                server = RecordingServer(plan.replies, default=plan.default)
                servers[name] = stack.enter_context(server)
                variables["CHAPERONE_DISCORD_WEBHOOK_URL"] = server.url_for(HOOK_PATH)
            invocations[name] = Invocation(plan.args, folder, clean_environ(folder, **variables))
        finished = run_many(invocations, parallel=None)
        yield {
            name: Run(
                **attrs.asdict(result, recurse=False),
                folder=invocations[name].cwd,
                requests=servers[name].requests if name in servers else [],
            )
            for name, result in finished.items()
        }


class TestDelivery:
    """All four sample alerts reach a healthy Discord as the seed's embeds."""

    def test_all_four_delivered(self, runs: dict[str, Run]) -> None:
        """test-alerts exits 0, each sample delivered once, to the webhook path with
        ``wait=true``, as JSON.
        """
        run = runs["delivered"]
        assert run.returncode == 0, str(run)
        assert [row["sample"] for row in run.deliveries()] == list(SAMPLES)
        assert {(row["status"], row["attempts"]) for row in run.deliveries()} == {("delivered", 1)}
        assert [request.path for request in run.requests] == [f"{HOOK_PATH}?wait=true"] * 4
        assert {request.method for request in run.requests} == {"POST"}
        assert {request.headers["Content-Type"] for request in run.requests} == {"application/json"}

    def test_payloads(self, runs: dict[str, Run]) -> None:
        """Each message is the seed's embed: emoji and title, colour, fields, footer,
        timestamp; posted under the configured username, pinging nobody.
        """
        bodies = runs["delivered"].bodies()
        expected = [
            (
                "⚠️ Job Stuck: datasets.process\\_large",
                RED,
                ["Supervision ID", "Job Class", "Stuck Duration", "Last Heartbeat"],
            ),
            (
                "⚠️ Job Timeout: reports.build\\_monthly",
                RED,
                ["Supervision ID", "Job Class", "Timeout Limit", "Actual Duration", "Exceeded By"],
            ),
            (
                "🚨 Circuit Breaker Opened: payment-gateway",
                RED,
                ["Service", "Failure Count", "Opened At", "Status", "Next Trial At"],
            ),
            (
                "🔶 Resource Violation: feeds.import\\_customers",
                ORANGE,
                ["Supervision ID", "Job Class", "Violation Type", "Limit", "Actual", "Exceeded By"],
            ),
        ]
        assert len(bodies) == len(expected)
        for body, (title, color, names) in zip(bodies, expected, strict=True):
            (embed,) = body["embeds"]
            assert embed["title"] == title
            assert embed["color"] == color
            assert [field["name"] for field in embed["fields"]] == names
            assert all(field["value"].strip() for field in embed["fields"])
            assert embed["footer"] == {"text": "Chaperone Job Supervision"}
            sent_at = datetime.fromisoformat(embed["timestamp"])
            assert abs(datetime.now(UTC) - sent_at) < timedelta(minutes=5)
            assert embed["description"]
            assert body["username"] == "Chaperone"
            assert body["allowed_mentions"] == {"parse": []}

    def test_history_records_each_delivery(self, runs: dict[str, Run]) -> None:
        """The store's history has each Discord delivery."""
        records = [r for r in stored_history(runs["delivered"].folder) if r["channel"] == "discord"]
        assert sorted(r["type"] for r in records) == sorted(
            ["job_stuck", "job_timeout", "circuit_breaker", "resource_violation"]
        )
        assert {r["status"] for r in records} == {"delivered"}


class TestRateLimit:
    """A 429 is waited out as Discord asks, then the alert is delivered."""

    def test_retry_after_is_honoured(self, runs: dict[str, Run]) -> None:
        """429 with Retry-After: 2 (the body saying 1.25): the next request comes no
        sooner than 2 s later, and the alert is delivered on it.
        """
        run = runs["rate-limited"]
        assert run.returncode == 0, str(run)
        first, second = run.requests[:2]
        assert 2.0 <= second.received_at - first.received_at < 10.0
        assert first.json() == second.json()
        stuck, _timeout = run.deliveries()
        assert (stuck["sample"], stuck["status"], stuck["attempts"]) == ("stuck", "delivered", 2)

    def test_milliseconds_in_the_body_are_not_seconds(self, runs: dict[str, Run]) -> None:
        """A 429 whose body says 2000 and header 2 is retried after 2 s, not 2000."""
        run = runs["rate-limited"]
        assert len(run.requests) == 4, str(run)
        first, second = run.requests[2:]
        assert 2.0 <= second.received_at - first.received_at < 10.0
        _stuck, timeout = run.deliveries()
        assert (timeout["sample"], timeout["status"]) == ("timeout", "delivered")
        assert timeout["attempts"] == 2


class TestFailures:
    """Refusals are reported without a retry; server errors are retried."""

    def test_refusals_fail_once_per_alert(self, runs: dict[str, Run]) -> None:
        """401, 403, then 400 for the rest: each alert fails after exactly one request
        (Discord bans senders that repeat invalid requests), test-alerts exits 1 and says
        why.
        """
        run = runs["refused"]
        assert run.returncode == 1, str(run)
        assert len(run.requests) == 4
        failures = [line for line in run.stdout.splitlines() if "→ discord: failed" in line]
        assert len(failures) == 4, str(run)
        assert "HTTP 401" in failures[0]
        assert "Invalid Webhook Token" in failures[0]
        assert "HTTP 403" in failures[1]
        assert all("HTTP 400" in line and "Invalid Form Body" in line for line in failures[2:])
        assert run.stdout.splitlines()[-1] == "4 delivered, 4 failed"

    def test_refusals_are_in_history(self, runs: dict[str, Run]) -> None:
        """History records each failure after one attempt."""
        records = [r for r in stored_history(runs["refused"].folder) if r["channel"] == "discord"]
        assert [(r["status"], r["attempts"]) for r in records] == [("failed", 1)] * 4

    def test_5xx_is_retried(self, runs: dict[str, Run]) -> None:
        """500 then 502 then 200: delivered on the third attempt."""
        run = runs["server-error"]
        assert run.returncode == 0, str(run)
        assert len(run.requests) == 3
        (row,) = run.deliveries()
        assert (row["status"], row["attempts"]) == ("delivered", 3)
        assert "will retry" in run.stderr


class TestSecrets:
    """The webhook URL shows nowhere."""

    @pytest.mark.parametrize("name", list(PLANS))
    def test_not_in_output_or_history(self, runs: dict[str, Run], name: str) -> None:
        """Neither the token nor the webhook path is in stdout, stderr or the store."""
        run = runs[name]
        stored = b"".join(path.read_bytes() for path in run.folder.glob(f"{STORE_FILE}*"))
        for text in (run.stdout, run.stderr, stored.decode("utf-8", errors="replace")):
            assert TOKEN not in text
            assert "424242424242" not in text


class TestDiscovery:
    """The installed plugin is found; a disabled one is named with its package."""

    def test_plugins_lists_discord(self, runs: dict[str, Run]) -> None:
        """``chaperone plugins --json`` lists the plugin ``discord`` with its channel."""
        run = runs["plugins"]
        assert run.returncode == 0, str(run)
        found = {plugin["name"]: plugin for plugin in run.json()}
        assert found["discord"]["channels"] == ["discord"]
        assert found["discord"]["status"] == "ok"

    def test_missing_plugin_names_the_package(self, runs: dict[str, Run]) -> None:
        """Config naming ``discord`` with the plugin disabled fails, naming
        ``chaperone-discord`` to install.
        """
        run = runs["disabled"]
        assert run.returncode == 2, str(run)
        assert "chaperone-discord" in run.stdout + run.stderr

    def test_bad_webhook_url_is_a_config_error(self, runs: dict[str, Run]) -> None:
        """A URL that is not a Discord webhook fails at start-up naming the variable."""
        run = runs["bad-url"]
        assert run.returncode == 2, str(run)
        assert "CHAPERONE_DISCORD_WEBHOOK_URL" in run.stderr
        assert "must be a Discord webhook URL: https://discord.com/api/webhooks/ then" in run.stderr
