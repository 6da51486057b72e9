"""The ``opsgenie`` channel end to end: the real ``chaperone`` CLI in subprocesses (and a
real runtime in this process) against a recording HTTP server on 127.0.0.1.

The CLI runs are independent, so one module fixture starts them all at once and each
test reads the run it needs: the wall time is that of the slowest run (the one that
waits out a 429's ``Retry-After: 2``), not the sum.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

from chaperone import Chaperone, JobRecovered, JobStuck, ManualClock
from chaperone.incidents import acknowledge_incident, unacknowledge_incident
from chaperone.testing.cli import CliResult, Invocation, clean_environ, run_cli, run_many
from chaperone.testing.servers import RecordedRequest, RecordingServer, Reply

API_KEY = "3f9a1c2e-7b4d-4e8f-a1b2-c3d4e5f60718"
APP_URL = "https://app.example.com"
ACCEPTED = json.dumps(
    {"result": "Request will be processed", "took": 0.107, "requestId": "r-1"}
).encode()
JSON = {"Content-Type": "application/json"}
ALL_SAMPLES = ("stuck", "timeout", "circuit-breaker", "resource")
CLI_TIMEOUT = 60.0


def accepted() -> Reply:
    """Opsgenie's 202."""
    return Reply(status=202, body=ACCEPTED, headers=JSON)


def opsgenie_error(status: int, message: str, **headers: str) -> Reply:
    """An Opsgenie error answer: JSON with a message."""
    body = json.dumps({"message": message, "took": 0.002, "requestId": "r-2"})
    return Reply(status=status, body=body, headers={**JSON, **headers})


@attrs.frozen
class Run(CliResult):
    """One finished CLI run, its folder, and the requests its server recorded."""

    requests: list[RecordedRequest]
    folder: Path

    def rows(self) -> list[dict[str, Any]]:
        """``test-alerts --json`` output for the opsgenie channel."""
        rows: list[dict[str, Any]] = json.loads(self.stdout)
        return [row for row in rows if row["channel"] == "opsgenie"]

    def bodies(self) -> list[Any]:
        """Every request's JSON body, in arrival order."""
        return [request.json() for request in self.requests]


@attrs.frozen
class Plan:
    """One CLI run to make: arguments, extra environment, the server's script."""

    args: tuple[str, ...]
    environ: Mapping[str, str] = attrs.field(factory=dict)
    replies: tuple[Reply, ...] = ()
    default: Reply = attrs.field(factory=accepted)
    channel_settings: bool = True


PLANS = {
    "delivered": Plan(("test-alerts", "--channel", "opsgenie", "--json")),
    "throttled": Plan(
        ("test-alerts", "stuck", "--channel", "opsgenie", "--channel", "database", "--json"),
        replies=(
            opsgenie_error(
                429,
                "You are making too many requests!",
                **{"Retry-After": "2", "X-RateLimit-State": "THROTTLED"},
            ),
        ),
    ),
    "unavailable": Plan(
        ("test-alerts", "stuck", "--channel", "opsgenie", "--json"),
        replies=(Reply(status=503, body="upstream unavailable"),),
    ),
    "refused": Plan(
        ("test-alerts", "--channel", "opsgenie", "--channel", "database", "--json"),
        default=opsgenie_error(422, "Request body is not processable."),
    ),
    "malformed key": Plan(
        ("test-alerts", "--channel", "opsgenie"),
        environ={"CHAPERONE_OPSGENIE_API_KEY": f"GenieKey {API_KEY}"},
    ),
    "disabled": Plan(
        ("config", "check"),
        environ={"CHAPERONE_ALERT_CHANNELS": "opsgenie", "CHAPERONE_DISABLE_PLUGINS": "opsgenie"},
    ),
    "plugins": Plan(("plugins", "--json"), channel_settings=False),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Run]]:
    """Every planned run, started together, each with its own server and folder."""
    with ExitStack() as stack:
        invocations = {}
        servers = {}
        for name, plan in PLANS.items():
            server = servers[name] = stack.enter_context(
                RecordingServer(plan.replies, default=plan.default)
            )
            folder = tmp_path_factory.mktemp(name.replace(" ", "-"))
            settings = {
                "CHAPERONE_OPSGENIE_API_KEY": API_KEY,
                "CHAPERONE_OPSGENIE_API_URL": server.url,
                "CHAPERONE_APP_URL": APP_URL,
            }
            chosen = {**(settings if plan.channel_settings else {}), **plan.environ}
            environ = clean_environ(folder, NO_COLOR="1", **chosen)
            invocations[name] = Invocation(plan.args, folder, environ)
        finished = run_many(invocations, parallel=None, timeout=CLI_TIMEOUT)
        yield {
            name: Run(
                **attrs.asdict(result, recurse=False),
                requests=servers[name].requests,
                folder=invocations[name].cwd,
            )
            for name, result in finished.items()
        }


def request_for(run: Run, alias: str) -> RecordedRequest:
    """The one request whose body carries ``alias``."""
    matching = [request for request in run.requests if request.json()["alias"] == alias]  # type: ignore[index]
    assert len(matching) == 1, f"{len(matching)} requests with alias {alias!r}\n{run}"
    return matching[0]


class TestTestAlerts:
    """``chaperone test-alerts --channel opsgenie`` against a loopback Opsgenie."""

    def test_all_four_types_delivered(self, runs: dict[str, Run]) -> None:
        """Each sample alert is one create request, delivered at the first attempt."""
        run = runs["delivered"]
        assert run.returncode == 0, run
        rows = run.rows()
        assert [row["sample"] for row in rows] == list(ALL_SAMPLES)
        assert all(row["status"] == "delivered" for row in rows), run
        assert all(row["attempts"] == 1 for row in rows), run
        assert all(row["detail"] == "HTTP 202, request r-1" for row in rows), run
        assert len(run.requests) == 4
        for request in run.requests:
            assert request.method == "POST"
            assert request.path == "/v2/alerts"
            assert request.headers["Authorization"] == f"GenieKey {API_KEY}"
            assert request.headers["Content-Type"] == "application/json"

    def test_payloads(self, runs: dict[str, Run]) -> None:
        """Each type's message, alias, priority, tags, entity, details and description."""
        run = runs["delivered"]
        expected = {
            "stuck": ("Job Stuck: datasets.process_large", "P2", "error"),
            "timeout": ("Job Timeout: reports.build_monthly", "P2", "error"),
            "circuit-breaker": ("Circuit Breaker Opened: payment-gateway", "P1", "critical"),
            "resource": ("Resource Violation: feeds.import_customers", "P3", "warning"),
        }
        for row in run.rows():
            alias = f"{row['type']}:{row['key']}"
            body: Any = request_for(run, alias).json()
            message, priority, severity = expected[row["sample"]]
            assert body["message"] == message == row["title"]
            assert body["priority"] == priority
            assert body["source"] == "Chaperone"
            assert body["tags"] == ["chaperone", "queue-jobs", row["type"], f"severity:{severity}"]
            assert body["entity"] == message.split(": ", 1)[1]
            assert all(isinstance(value, str) for value in body["details"].values())
            assert body["details"]["Alert Type"] == row["type"]
            assert body["details"]["Alert Key"] == row["key"]
            if row["sample"] != "circuit-breaker":
                supervision_id = body["details"]["Supervision ID"]
                link = f"View Job Details: {APP_URL}/chaperone/jobs/{supervision_id}"
                assert body["description"].endswith(link)
                assert f"Supervision ID: {supervision_id}\n" in body["description"]

    def test_stuck_description_follows_the_seed(self, runs: dict[str, Run]) -> None:
        """The stuck job's description reads as the seed's e-mail body."""
        run = runs["delivered"]
        [row] = [row for row in run.rows() if row["sample"] == "stuck"]
        body: Any = request_for(run, f"job_stuck:{row['key']}").json()
        lines = body["description"].split("\n")
        assert lines[0] == (
            "A supervised job has been detected as stuck and may require intervention."
        )
        assert lines[2:6] == [
            f"Supervision ID: {row['key']}",
            "Job Class: datasets.process_large",
            "Stuck Duration: 30 minutes",
            lines[5],
        ]
        assert lines[5].startswith("Last Heartbeat: ")
        assert lines[7].startswith("This job may be in an infinite loop")

    def test_429_waits_retry_after_then_delivers(self, runs: dict[str, Run]) -> None:
        """After a 429 with Retry-After: 2, the next request comes no sooner than 2 s
        later, and the alert is delivered.
        """
        run = runs["throttled"]
        assert run.returncode == 0, run
        [row] = run.rows()
        assert row["status"] == "delivered"
        assert row["attempts"] == 2
        first, second = run.requests
        assert second.received_at - first.received_at >= 2.0
        assert first.json() == second.json()

    def test_5xx_is_retried(self, runs: dict[str, Run]) -> None:
        """A 503 is retried, and the second attempt delivers."""
        run = runs["unavailable"]
        assert run.returncode == 0, run
        [row] = run.rows()
        assert row["status"] == "delivered"
        assert row["attempts"] == 2
        assert len(run.requests) == 2

    def test_refusal_is_not_retried(self, runs: dict[str, Run]) -> None:
        """A 422 fails each alert at once: one request per alert, exit code 1."""
        run = runs["refused"]
        assert run.returncode == 1, run
        rows = run.rows()
        assert len(rows) == 4
        assert all(row["status"] == "failed" for row in rows)
        assert all(row["attempts"] == 1 for row in rows)
        assert all("HTTP 422" in row["detail"] for row in rows)
        assert len(run.requests) == 4

    def test_malformed_key_stops_start_up(self, runs: dict[str, Run]) -> None:
        """A malformed key is a configuration error (exit 2) naming the variable; nothing
        is sent.
        """
        run = runs["malformed key"]
        assert run.returncode == 2, run
        assert "CHAPERONE_OPSGENIE_API_KEY" in run.stderr
        assert run.requests == []


class TestSecrets:
    """The API key shows nowhere but in the Authorization header."""

    def test_not_in_any_output(self, runs: dict[str, Run]) -> None:
        """No run prints the key, on stdout or stderr."""
        for name, run in runs.items():
            assert API_KEY not in run.stdout, name
            assert API_KEY not in run.stderr, name

    def test_not_in_any_stored_file(self, runs: dict[str, Run]) -> None:
        """Nothing the runs stored (history, outcomes) holds the key."""
        for name, run in runs.items():
            for path in run.folder.iterdir():
                assert API_KEY.encode() not in path.read_bytes(), f"{name}: {path.name}"

    @pytest.mark.parametrize("name", ["throttled", "refused"])
    def test_not_in_history(self, runs: dict[str, Run], name: str) -> None:
        """``chaperone history`` lists the opsgenie deliveries, retried and failed, and
        not the key.
        """
        run = runs[name]
        result = run_cli(
            "history", "--json", cwd=run.folder, env=clean_environ(run.folder), timeout=CLI_TIMEOUT
        )
        assert result.returncode == 0, str(result)
        history = result.json()
        assert [entry for entry in history if entry.get("channel") == "opsgenie"], history
        assert API_KEY not in result.stdout
        assert API_KEY not in result.stderr


class TestDiscovery:
    """The installed plugin is found; a disabled one is named by its package."""

    def test_listed(self, runs: dict[str, Run]) -> None:
        """``chaperone plugins --json`` lists the plugin and its channel."""
        run = runs["plugins"]
        assert run.returncode == 0, run
        [plugin] = [entry for entry in json.loads(run.stdout) if entry["name"] == "opsgenie"]
        assert plugin["channels"] == ["opsgenie"]
        assert plugin["distribution"] == "chaperone-opsgenie"
        assert plugin["status"] == "ok"

    def test_missing_plugin_names_its_package(self, runs: dict[str, Run]) -> None:
        """With the plugin disabled (as if uninstalled), a config naming the channel fails
        with the package to install.
        """
        run = runs["disabled"]
        assert run.returncode == 2, run
        assert "pip install chaperone-opsgenie" in run.stdout + run.stderr


# -- resolutions, through a real runtime in this process ---------------------------------------


def stuck(supervision_id: str, at: datetime) -> JobStuck:
    """A stuck-job event."""
    return JobStuck(
        supervision_id=supervision_id,
        job_class="App\\Jobs\\ImportFeed",
        stuck_duration=timedelta(minutes=30),
        last_heartbeat=at - timedelta(minutes=30),
        occurred_at=at,
    )


def recovered(supervision_id: str, at: datetime) -> JobRecovered:
    """The stuck job's recovery."""
    return JobRecovered(
        supervision_id=supervision_id,
        job_class="App\\Jobs\\ImportFeed",
        recovered_from="job_stuck",
        reason="heartbeats resumed",
        occurred_at=at,
    )


class TestResolution:
    """A resolved alert closes the Opsgenie alert by alias."""

    def test_recovery_closes_by_alias(self, tmp_path: Path) -> None:
        """A stuck job's recovery closes its alert by alias (``identifierType=alias``);
        a 404 to a close is delivered as nothing open to close.
        """
        at = datetime(2024, 1, 15, 10, 30, tzinfo=UTC)
        replies = [accepted(), accepted(), accepted(), opsgenie_error(404, "Alert not found")]
        with RecordingServer(replies) as server:
            environ = clean_environ(
                tmp_path,
                CHAPERONE_ALERT_CHANNELS="opsgenie",
                CHAPERONE_OPSGENIE_API_KEY=API_KEY,
                CHAPERONE_OPSGENIE_API_URL=server.url + "/",
            )
            with Chaperone.from_environment(environ, tmp_path, setup_logging=False) as runtime:
                reports = [
                    runtime.dispatch(stuck("job/1", at)),
                    runtime.dispatch(recovered("job/1", at + timedelta(minutes=1))),
                    runtime.dispatch(stuck("job-2", at)),
                    runtime.dispatch(recovered("job-2", at + timedelta(minutes=1))),
                ]
            requests = server.requests
        deliveries = [report.alerts[0].deliveries[0] for report in reports]
        assert all(delivery.ok for delivery in deliveries), deliveries
        assert deliveries[3].outcome.detail == "HTTP 404: nothing open to close"
        create, close = requests[0], requests[1]
        assert create.path == "/v2/alerts"
        assert create.json()["alias"] == "job_stuck:job/1"  # type: ignore[index]
        assert close.method == "POST"
        assert close.path == "/v2/alerts/job_stuck%3Ajob%2F1/close?identifierType=alias"
        assert close.headers["Authorization"] == f"GenieKey {API_KEY}"
        assert close.json() == {
            "source": "Chaperone",
            "note": "Job Recovered: App\\Jobs\\ImportFeed\n"
            "The job recovered: heartbeats resumed.\n\n"
            "Supervision ID: job/1\n"
            "Job Class: App\\Jobs\\ImportFeed",
        }
        assert requests[3].path == "/v2/alerts/job_stuck%3Ajob-2/close?identifierType=alias"


class TestAcknowledgement:
    """An acknowledgement in Chaperone acknowledges the Opsgenie alert by alias, and its
    undoing unacknowledges it.
    """

    def test_acknowledge_and_undo_by_alias(self, tmp_path: Path) -> None:
        """Create; acknowledge with the note (``identifierType=alias``); a repeat held
        back; unacknowledge; the recovery closes.
        """
        at = datetime.now(UTC)
        clock = ManualClock(at)
        with RecordingServer(default=accepted()) as server:
            environ = clean_environ(
                tmp_path,
                CHAPERONE_ALERT_CHANNELS="opsgenie",
                CHAPERONE_OPSGENIE_API_KEY=API_KEY,
                CHAPERONE_OPSGENIE_API_URL=server.url + "/",
            )
            with Chaperone.from_environment(
                environ, tmp_path, clock=clock, setup_logging=False
            ) as runtime:
                runtime.dispatch(stuck("job/1", at))
                acked = acknowledge_incident(
                    runtime, "job_stuck", "job/1", by="alice", note="restarting the worker"
                )
                clock.advance(timedelta(minutes=30))
                repeat = runtime.dispatch(stuck("job/1", clock.now())).alerts[0]
                undone = unacknowledge_incident(runtime, "job_stuck", "job/1", by="alice")
                runtime.dispatch(recovered("job/1", clock.now()))
            requests = server.requests
        assert [item.ok for item in acked.deliveries + undone.deliveries] == [True, True]
        assert repeat.verdict.reason is not None
        assert repeat.verdict.reason.startswith("acknowledged by alice")
        assert [request.path for request in requests] == [
            "/v2/alerts",
            "/v2/alerts/job_stuck%3Ajob%2F1/acknowledge?identifierType=alias",
            "/v2/alerts/job_stuck%3Ajob%2F1/unacknowledge?identifierType=alias",
            "/v2/alerts/job_stuck%3Ajob%2F1/close?identifierType=alias",
        ]
        acknowledge = requests[1]
        assert acknowledge.headers["Authorization"] == f"GenieKey {API_KEY}"
        body = acknowledge.json()
        assert isinstance(body, dict)
        assert body["source"] == "Chaperone"
        assert body["note"].startswith(
            "Job Stuck: App\\Jobs\\ImportFeed: acknowledged by alice: restarting the worker"
        )
        assert "Acknowledged by: alice" in body["note"]
