"""The ``pagerduty`` channel against a real HTTP server on 127.0.0.1 standing in for the
Events API: the real ``chaperone`` CLI in subprocesses (clean environment, SQLite store in
a temporary folder), and a real runtime for the trigger-then-resolve round trip.

The CLI runs are independent, so a module fixture starts them all at once and the tests
read their results: the whole module costs about as long as its slowest run (the one
waiting out a ``Retry-After: 2``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import attrs
import pytest

from chaperone import Chaperone, IncidentRef, JobCompleted, JobRecovered, JobStuck, ManualClock
from chaperone.incidents import acknowledge_incident, unacknowledge_incident
from chaperone.testing import capture_all_logs, find_secrets
from chaperone.testing.cli import (
    STORE_FILE,
    CliResult,
    Invocation,
    clean_environ,
    run_many,
    stored_history,
)
from chaperone.testing.servers import RecordedRequest, RecordingServer, Reply

ROUTING_KEY = "pdIntegrationKey0123456789abcdXY"
APP_URL = "https://app.example.com"
PATH = "/v2/enqueue"
TIMEOUT = 60.0
CHANNELS = ("--channel", "pagerduty", "--channel", "database")
"""The channel under test, and the history (which records its outcomes)."""
SEVERITIES = {
    "job_stuck": "error",
    "job_timeout": "error",
    "circuit_breaker": "critical",
    "resource_violation": "warning",
}


def _accepted(request: RecordedRequest, _base_url: str) -> str:
    body = json.loads(request.body)
    return json.dumps(
        {"status": "success", "message": "Event processed", "dedup_key": body["dedup_key"]}
    )


ACCEPTED = Reply(status=202, body=_accepted, headers={"Content-Type": "application/json"})
THROTTLED = Reply(
    status=429,
    headers={"Retry-After": "2", "Content-Type": "application/json"},
    body='{"status":"throttle event","message":"Requests for this service are arriving '
    'too quickly. Please retry later."}',
)


def _quoting_rejection(request: RecordedRequest, _base_url: str) -> bytes:
    # PagerDuty does not quote the event back, routing key included; a careless one might.
    return b'{"status":"invalid event","event":' + request.body + b"}"


REJECTED = Reply(status=400, body=_quoting_rejection)


@attrs.frozen
class Run(CliResult):
    """One finished ``chaperone`` run, its folder, and what its server received."""

    folder: Path
    requests: list[RecordedRequest]

    def rows(self) -> list[dict[str, Any]]:
        """The pagerduty rows of ``test-alerts --json``."""
        return [row for row in self.json() if row["channel"] == "pagerduty"]


@attrs.frozen
class Scenario:
    """A CLI run to make: its arguments, its server's replies and extra environment."""

    args: tuple[str, ...]
    replies: tuple[Reply, ...] = ()
    default: Reply = ACCEPTED
    env: Mapping[str, str] = attrs.field(factory=dict)


SCENARIOS = {
    "all-types": Scenario(("test-alerts", *CHANNELS, "--json")),
    "throttled": Scenario(("test-alerts", "stuck", *CHANNELS, "--json"), replies=(THROTTLED,)),
    "rejected": Scenario(("test-alerts", *CHANNELS), default=REJECTED),
    "unavailable": Scenario(
        ("test-alerts", "timeout", *CHANNELS, "--json"),
        replies=(Reply(status=500, body="oops"), Reply(status=503, body="")),
        env={"CHAPERONE_DELIVERY_MAX_BACKOFF": "0"},
    ),
    "plugins": Scenario(("plugins", "--json")),
    "disabled": Scenario(
        ("config", "check"),
        env={"CHAPERONE_ALERT_CHANNELS": "pagerduty", "CHAPERONE_DISABLE_PLUGINS": "pagerduty"},
    ),
    "bad-key": Scenario(
        ("config", "check"),
        env={
            "CHAPERONE_ALERT_CHANNELS": "pagerduty",
            "CHAPERONE_PAGERDUTY_ROUTING_KEY": ROUTING_KEY[:31],
        },
    ),
    "bad-url": Scenario(
        ("config", "check"),
        env={"CHAPERONE_ALERT_CHANNELS": "pagerduty", "CHAPERONE_PAGERDUTY_EVENTS_URL": "nope"},
    ),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Run]]:
    """Every scenario's run, all started at once, each with its own server and folder;
    then ``history --json`` in each folder that delivered.
    """
    with ExitStack() as stack:
        invocations = {}
        servers = {}
        for name, scenario in SCENARIOS.items():
            server = servers[name] = stack.enter_context(
                RecordingServer(scenario.replies, default=scenario.default)
            )
            folder = tmp_path_factory.mktemp(name)
            channel_env = {
                "CHAPERONE_PAGERDUTY_ROUTING_KEY": ROUTING_KEY,
                "CHAPERONE_PAGERDUTY_EVENTS_URL": server.url_for(PATH),
                "CHAPERONE_APP_URL": APP_URL,
            }
            env = clean_environ(folder, NO_COLOR="1", **{**channel_env, **scenario.env})
            invocations[name] = Invocation(scenario.args, folder, env)
        results = {
            name: Run(
                **attrs.asdict(result, recurse=False),
                folder=invocations[name].cwd,
                requests=servers[name].requests,
            )
            for name, result in run_many(invocations, parallel=None).items()
        }
        histories = {
            f"{name}/history": Invocation(
                ("history", "--json", "--limit", "1000"),
                run.folder,
                clean_environ(run.folder, NO_COLOR="1"),
            )
            for name, run in results.items()
            if name in {"all-types", "rejected", "throttled", "unavailable"}
        }
        for name, result in run_many(histories, parallel=None).items():
            results[name] = Run(
                **attrs.asdict(result, recurse=False), folder=histories[name].cwd, requests=[]
            )
        yield results


def events_of(run: Run) -> list[dict[str, Any]]:
    """The JSON bodies the run's server received."""
    return [cast(dict[str, Any], request.json()) for request in run.requests]


class TestDelivery:
    """``chaperone test-alerts --channel pagerduty`` against a healthy server."""

    def test_all_four_alert_types_are_delivered(self, runs: dict[str, Run]) -> None:
        """Every sample is delivered at the first attempt and the command succeeds."""
        run = runs["all-types"]
        assert run.returncode == 0, str(run)
        rows = run.rows()
        assert [row["type"] for row in rows] == list(SEVERITIES)
        assert all(row["status"] == "delivered" and row["attempts"] == 1 for row in rows), rows
        assert len(run.requests) == 4

    def test_each_request_is_a_trigger_event(self, runs: dict[str, Run]) -> None:
        """Each request is a JSON POST to the events URL carrying the routing key."""
        run = runs["all-types"]
        for request, event in zip(run.requests, events_of(run), strict=True):
            assert request.method == "POST"
            assert request.path == PATH
            assert request.headers["Content-Type"] == "application/json"
            assert event["routing_key"] == ROUTING_KEY
            assert event["event_action"] == "trigger"
            assert event["client"] == "Chaperone"

    def test_payloads_follow_the_seed(self, runs: dict[str, Run]) -> None:
        """dedup_key, summary, severity, source, component, class, details and links."""
        run = runs["all-types"]
        for row, event in zip(run.rows(), events_of(run), strict=True):
            payload = event["payload"]
            assert event["dedup_key"] == f"{row['type']}:{row['key']}"
            assert payload["summary"] == row["title"]
            assert payload["severity"] == SEVERITIES[row["type"]]
            assert payload["source"] == "chaperone"
            assert payload["component"] == "queue-jobs"
            assert payload["class"] == row["type"]
            assert datetime.fromisoformat(payload["timestamp"]).tzinfo is not None
            assert payload["custom_details"]["summary"]
            assert payload["custom_details"]["explanation"]
        stuck, timeout, breaker, resource = events_of(run)
        assert stuck["payload"]["summary"] == "Job Stuck: datasets.process_large"
        assert stuck["payload"]["group"] == "datasets.process_large"
        assert stuck["payload"]["custom_details"]["Stuck Duration"] == "30 minutes"
        assert timeout["payload"]["custom_details"]["Timeout Limit"] == "300s"
        assert breaker["payload"]["group"] == "payment-gateway"
        assert breaker["payload"]["custom_details"]["Failure Count"] == "10"
        assert "links" not in breaker
        assert resource["payload"]["custom_details"]["labels"] == {"violation_type": "memory"}
        for event in (stuck, timeout, resource):
            supervision_id = event["payload"]["custom_details"]["Supervision ID"]
            assert event["links"] == [
                {"href": f"{APP_URL}/chaperone/jobs/{supervision_id}", "text": "View Job Details"}
            ]


class TestFailures:
    """Throttling, outages and rejections."""

    def test_429_waits_for_retry_after_then_delivers(self, runs: dict[str, Run]) -> None:
        """After a 429 with Retry-After: 2 the next request comes no sooner than 2 s later,
        and the alert is delivered.
        """
        run = runs["throttled"]
        assert run.returncode == 0, str(run)
        first, second = run.requests
        assert second.received_at - first.received_at >= 2.0
        assert first.body == second.body
        [row] = run.rows()
        assert row["status"] == "delivered"
        assert row["attempts"] == 2

    def test_5xx_is_retried_until_delivered(self, runs: dict[str, Run]) -> None:
        """A 500 then a 503 are retried; the third attempt is delivered."""
        run = runs["unavailable"]
        assert run.returncode == 0, str(run)
        assert len(run.requests) == 3
        assert len({request.body for request in run.requests}) == 1
        [row] = run.rows()
        assert (row["status"], row["attempts"]) == ("delivered", 3)

    def test_400_fails_without_retry(self, runs: dict[str, Run]) -> None:
        """A 400 fails each alert after exactly one request, and the command exits 1."""
        run = runs["rejected"]
        assert run.returncode == 1, str(run)
        assert len(run.requests) == 4
        assert "4 delivered, 4 failed" in run.stdout  # the history took them
        assert run.stdout.count("HTTP 400") == 4


class TestSecrets:
    """The routing key never shows, even when the server quotes it back."""

    @pytest.mark.parametrize(
        "name",
        [
            "all-types",
            "throttled",
            "unavailable",
            "rejected",
            "bad-key",
            "bad-url",
            "all-types/history",
            "throttled/history",
            "unavailable/history",
            "rejected/history",
        ],
    )
    def test_key_not_in_output(self, runs: dict[str, Run], name: str) -> None:
        """Neither standard output nor standard error shows the key or a piece of it."""
        run = runs[name]
        pieces = [ROUTING_KEY, ROUTING_KEY[:16], ROUTING_KEY[16:], ROUTING_KEY[:31]]
        assert not find_secrets([run.stdout, run.stderr], pieces), f"{name} leaked the key"

    def test_rejection_really_quoted_the_key(self, runs: dict[str, Run]) -> None:
        """The rejecting server did quote the key, so its absence above means masking."""
        run = runs["rejected"]
        assert "********" in run.stdout
        assert all(ROUTING_KEY.encode() in request.body for request in run.requests)

    @pytest.mark.parametrize("name", ["all-types", "rejected"])
    def test_key_not_in_the_store(self, runs: dict[str, Run], name: str) -> None:
        """The history the runs wrote is free of the key."""
        history = runs[f"{name}/history"]
        assert history.returncode == 0, str(history)
        assert any(record["channel"] == "pagerduty" for record in history.json()), str(history)
        stored = b"".join(path.read_bytes() for path in runs[name].folder.glob(f"{STORE_FILE}*"))
        assert ROUTING_KEY.encode() not in stored


class TestConfiguration:
    """Discovery and start-up checks."""

    def test_plugins_lists_pagerduty(self, runs: dict[str, Run]) -> None:
        """``chaperone plugins --json`` lists the plugin and its channel."""
        run = runs["plugins"]
        assert run.returncode == 0, str(run)
        [plugin] = [plugin for plugin in run.json() if plugin["name"] == "pagerduty"]
        assert plugin["channels"] == ["pagerduty"]
        assert plugin["distribution"] == "chaperone-pagerduty"
        assert plugin["status"] == "ok"

    def test_disabled_plugin_names_the_package(self, runs: dict[str, Run]) -> None:
        """With the plugin disabled, naming the channel fails with the package to install."""
        run = runs["disabled"]
        assert run.returncode == 2, str(run)
        assert "chaperone-pagerduty" in run.stdout + run.stderr

    def test_malformed_key_fails_at_start_up(self, runs: dict[str, Run]) -> None:
        """A routing key of 31 characters is a configuration error naming its variable."""
        run = runs["bad-key"]
        assert run.returncode == 2, str(run)
        assert "CHAPERONE_PAGERDUTY_ROUTING_KEY" in run.stdout + run.stderr

    def test_malformed_url_fails_at_start_up(self, runs: dict[str, Run]) -> None:
        """An events URL that is not http(s) is a configuration error naming its variable."""
        run = runs["bad-url"]
        assert run.returncode == 2, str(run)
        assert "CHAPERONE_PAGERDUTY_EVENTS_URL" in run.stdout + run.stderr


class TestResolution:
    """A real runtime: an incident opened by an event is resolved by its recovery."""

    def test_recovery_resolves_with_the_trigger_dedup_key(self, tmp_path: Path) -> None:
        """JobStuck triggers; JobRecovered and JobCompleted send resolve with its dedup_key."""
        now = datetime.now(UTC)
        sid = "9b2f4c1e-7d3a-4e8b-a1c5-2f6d8e0b4a71"
        job = "App\\Jobs\\ImportFeed"
        with RecordingServer(default=ACCEPTED) as server, capture_all_logs() as logs:
            environ = clean_environ(
                tmp_path,
                CHAPERONE_ALERT_CHANNELS="pagerduty",
                CHAPERONE_PAGERDUTY_ROUTING_KEY=ROUTING_KEY,
                CHAPERONE_PAGERDUTY_EVENTS_URL=server.url_for(PATH),
            )
            with Chaperone.from_environment(environ, tmp_path, setup_logging=False) as runtime:
                reports = [
                    runtime.dispatch(
                        JobStuck(
                            supervision_id=sid,
                            job_class=job,
                            stuck_duration=timedelta(minutes=10),
                            occurred_at=now,
                        )
                    ),
                    runtime.dispatch(JobRecovered(supervision_id=sid, job_class=job)),
                    runtime.dispatch(
                        JobCompleted(
                            supervision_id=sid,
                            job_class=job,
                            duration=timedelta(minutes=20),
                            resolves=[IncidentRef(type="job_stuck", key=sid)],
                        )
                    ),
                ]
            requests = server.requests
        delivered = [alert.delivered for report in reports for alert in report.alerts]
        assert delivered == [True, True, True], reports
        trigger, *resolves = [cast(dict[str, Any], request.json()) for request in requests]
        assert trigger["event_action"] == "trigger"
        assert trigger["dedup_key"] == f"job_stuck:{sid}"
        assert (
            resolves
            == [
                {
                    "routing_key": ROUTING_KEY,
                    "event_action": "resolve",
                    "dedup_key": f"job_stuck:{sid}",
                }
            ]
            * 2
        )
        assert not find_secrets(logs, [ROUTING_KEY])


class TestAcknowledgement:
    """A real runtime on a SQLite file and a loopback Events API: an acknowledgement in
    Chaperone reaches PagerDuty as ``acknowledge`` with the trigger's ``dedup_key``.
    """

    def test_acknowledge_reaches_pagerduty_and_the_repeat_does_not(self, tmp_path: Path) -> None:
        """Trigger; acknowledge (passed on); a repeat past the rate-limit window (held
        back); an undo (PagerDuty has none: nothing sent); the recovery (resolve).
        """
        sid = "3c1d9e2a-5b7f-4a60-9d1e-8f2b6c4a0e13"
        job = "App\\Jobs\\ImportFeed"
        clock = ManualClock(datetime.now(UTC))
        with RecordingServer(default=ACCEPTED) as server, capture_all_logs() as logs:
            environ = clean_environ(
                tmp_path,
                CHAPERONE_ALERT_CHANNELS="pagerduty,database",
                CHAPERONE_PAGERDUTY_ROUTING_KEY=ROUTING_KEY,
                CHAPERONE_PAGERDUTY_EVENTS_URL=server.url_for(PATH),
            )

            def stuck() -> JobStuck:
                return JobStuck(
                    supervision_id=sid, job_class=job, stuck_duration=timedelta(minutes=10)
                )

            with Chaperone.from_environment(
                environ, tmp_path, clock=clock, setup_logging=False
            ) as runtime:
                assert runtime.dispatch(stuck()).alerts[0].delivered
                result = acknowledge_incident(runtime, "job_stuck", sid, by="alice", note="on it")
                clock.advance(timedelta(minutes=30))
                repeat = runtime.dispatch(stuck()).alerts[0]
                undo = unacknowledge_incident(runtime, "job_stuck", sid, by="alice")
                recovered = runtime.dispatch(JobRecovered(supervision_id=sid, job_class=job))
            requests = [cast(dict[str, Any], request.json()) for request in server.requests]
        assert [item.destination.channel for item in result.deliveries] == ["pagerduty"]
        assert [item.ok for item in result.deliveries] == [True]
        assert repeat.verdict.reason is not None
        assert repeat.verdict.reason.startswith("acknowledged by alice at ")
        assert undo.changed
        assert undo.deliveries == ()
        assert recovered.alerts[0].delivered
        assert [request["event_action"] for request in requests] == [
            "trigger",
            "acknowledge",
            "resolve",
        ]
        assert requests[1] == {
            "routing_key": ROUTING_KEY,
            "event_action": "acknowledge",
            "dedup_key": f"job_stuck:{sid}",
        }
        history = stored_history(tmp_path)
        assert [
            (r["status"], r["channel"]) for r in history if r["alert_status"] == "acknowledged"
        ] == [
            ("delivered", "pagerduty"),
            ("acknowledged", ""),
        ]
        assert not find_secrets(logs, [ROUTING_KEY])
