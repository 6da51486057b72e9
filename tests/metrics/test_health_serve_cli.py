"""``chaperone health`` and ``chaperone serve`` as a person runs them: the real console
script, a SQLite file per scenario, ``test-alerts`` through the fixture plugin's webhook
channel to loopback servers scripted to fail or succeed, a monitor's beat where one is
meant to be ticking, and ``serve --port 0`` read over 127.0.0.1 with httpx. Then the
store faults: a file locked by another connection, a file that is not a database, a
Redis where nothing listens.

Most of a run is Python starting up, so the scenarios' commands start together in a
module-scoped fixture and each test checks one aspect of their results.
"""

from __future__ import annotations

import signal
import socket
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from chaperone import SystemClock
from chaperone.cli.serve import exposure_problem
from chaperone.config import HealthSettings, ServeSettings, Settings
from chaperone.metrics import CHECKS
from chaperone.metrics._liveness import MonitorBeat
from chaperone.store import SQLiteStore
from chaperone.testing.servers import RecordingServer, Reply
from helpers.cli import (
    STORE_FILE,
    CliResult,
    Invocation,
    clean_environ,
    require_fixture_plugins,
    run_cli,
    run_many,
    store_url,
)
from helpers.serve import Served, serving

TOKEN = "tok-5e8f1c2a9d7b4e63a0f2"  # noqa: S105 - a test token, checked never to be shown
QUICK_ANSWER = 8.0
"""Seconds within which ``chaperone health`` must answer on a locked store: its own 2 s
wait and start-up, well under the 10 s SQLite waits for a lock."""


def ticking(folder: Path) -> None:
    """Record, in the store of ``folder``, the beat of a monitor ticking every five
    minutes, as of now (as ``chaperone monitor`` records one each tick).
    """
    path = folder / STORE_FILE
    store = SQLiteStore(path, SystemClock(), store_url(path))
    try:
        MonitorBeat(
            monitor="test-monitor",
            host="test-host",
            pid=1,
            interval=300.0,
            ticked_at=SystemClock().timestamp(),
        ).write(store)
    finally:
        store.close()


def failed_checks(data: dict[str, Any]) -> list[str]:
    """The names of the checks the JSON says failed."""
    return [name for name, check in data["checks"].items() if not check["ok"]]


def without_details(data: dict[str, Any]) -> dict[str, Any]:
    """The JSON with each check's detail left out (timings and ages differ per call)."""
    return {
        **data,
        "checks": {name: {"ok": check["ok"]} for name, check in data["checks"].items()},
    }


@attrs.frozen
class Scenario:
    """One store after a ``test-alerts`` run, the server its webhook talked to, and what
    ``chaperone health`` said about it.
    """

    folder: Path
    env: Mapping[str, str]
    sent: CliResult
    received: int
    health: CliResult
    health_text: CliResult


# The webhook servers of each scenario: what they answer.
SERVERS = {
    "failing": lambda: RecordingServer(default=Reply(status=400, body="invalid_payload")),
    "one-failure": lambda: RecordingServer([Reply(status=400, body="no")]),
    "delivered": lambda: RecordingServer(),
}


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Scenario]]:
    """``test-alerts`` to ``webhook,database`` with a webhook answering 400 to everything
    (4 of 8 deliveries fail), 400 once then 200 (1 of 8), and 200 always; a monitor's
    beat in each of those stores and in an empty one (``monitored``); then ``health
    --json`` and ``health`` on each store, and on an empty one without a monitor.
    """
    require_fixture_plugins()
    with ExitStack() as stack:
        servers = {name: stack.enter_context(make()) for name, make in SERVERS.items()}
        envs = {}
        for name, server in servers.items():
            folder = tmp_path_factory.mktemp(name)
            envs[name] = (
                folder,
                clean_environ(
                    folder,
                    CHAPERONE_ALERT_CHANNELS="webhook,database",
                    CHAPERONE_WEBHOOK_URL=server.url_for("/hook"),
                    CHAPERONE_DELIVERY_MAX_BACKOFF="0",
                ),
            )
        for name in ("empty", "monitored"):
            folder = tmp_path_factory.mktemp(name)
            envs[name] = (folder, clean_environ(folder))
        sent = run_many(
            {
                name: Invocation(("test-alerts",), folder, env)
                for name, (folder, env) in envs.items()
                if name in servers
            }
        )
        for name, (folder, _env) in envs.items():
            if name != "empty":
                ticking(folder)
        reads = run_many(
            {
                f"{name}{suffix}": Invocation(("health", *args), folder, env)
                for name, (folder, env) in envs.items()
                for suffix, args in ((":json", ("--json",)), (":text", ()))
            }
        )
        yield {
            name: Scenario(
                folder=folder,
                env=env,
                sent=sent.get(name, reads[f"{name}:json"]),
                received=len(servers[name].requests) if name in servers else 0,
                health=reads[f"{name}:json"],
                health_text=reads[f"{name}:text"],
            )
            for name, (folder, env) in envs.items()
        }


class TestHealthCommand:
    """``chaperone health`` after real deliveries."""

    def test_failures_over_threshold_exit_1(self, scenarios: dict[str, Scenario]) -> None:
        """4 of 9 deliveries failed (the four samples to the webhook; the database had
        them and the webhook's degraded alert): unhealthy, exit 1, rate 44 %; the delivery
        check failed, and so did the degraded one (the webhook channel is failing).
        """
        run = scenarios["failing"]
        assert run.sent.returncode == 1, str(run.sent)
        assert run.health.returncode == 1, str(run.health)
        data = run.health.json()
        assert data["healthy"] is False
        assert data["failure_rate"] == 44.44
        assert data["threshold"] == 5.0
        assert failed_checks(data) == ["degraded", "delivery"]
        assert data["checks"]["delivery"]["detail"] == (
            "4 of 9 deliveries failed in the last 1 hour (44.44%; unhealthy at 5%)"
        )
        assert "channel:webhook" in data["checks"]["degraded"]["detail"]

    def test_counts_match_what_the_server_received(self, scenarios: dict[str, Scenario]) -> None:
        """The webhook's failed count is the number of requests the server answered 400;
        the database channel delivered the same four alerts, and the one degraded alert
        about the webhook (never sent to the webhook itself).
        """
        run = scenarios["failing"]
        stats = run.health.json()["stats"]
        assert run.received == 4
        assert stats["by_channel"] == {
            "database": {"sent": 5, "failed": 0},
            "webhook": {"sent": 0, "failed": run.received},
        }
        assert stats["by_type"] == {
            **{
                alert_type: {"sent": 1, "failed": 1}
                for alert_type in (
                    "circuit_breaker",
                    "job_stuck",
                    "job_timeout",
                    "resource_violation",
                )
            },
            "chaperone_degraded": {"sent": 1, "failed": 0},
        }
        assert (stats["total_sent"], stats["total_failed"]) == (5, 4)

    def test_one_failure_in_eight_is_unhealthy(self, scenarios: dict[str, Scenario]) -> None:
        """1 of 10 deliveries failed (10 %, over the default 5 %): exit 1. The failure
        raised the webhook's degraded alert and its next success resolved it (both to the
        database only), so no degraded part is left open.
        """
        run = scenarios["one-failure"]
        assert run.received == 4
        assert run.health.returncode == 1, str(run.health)
        data = run.health.json()
        assert data["failure_rate"] == 10.0
        assert data["window"] == {"seconds": 3600, "sent": 9, "failed": 1}
        assert data["stats"]["by_channel"]["webhook"] == {"sent": 3, "failed": 1}
        assert data["stats"]["by_type"]["chaperone_degraded"] == {"sent": 2, "failed": 0}
        assert failed_checks(data) == ["delivery"]

    def test_all_delivered_exit_0(self, scenarios: dict[str, Scenario]) -> None:
        """Every delivery confirmed: healthy, exit 0, 8 sent, 4 of them received."""
        run = scenarios["delivered"]
        assert run.sent.returncode == 0, str(run.sent)
        assert run.health.returncode == 0, str(run.health)
        data = run.health.json()
        assert data["healthy"] is True
        assert data["failure_rate"] == 0.0
        assert data["stats"]["by_channel"]["webhook"] == {"sent": run.received, "failed": 0}
        assert data["stats"]["total_sent"] == 8

    def test_json_shape(self, scenarios: dict[str, Scenario]) -> None:
        """The seed's keys (healthy, stats, failure_rate) plus threshold, window, and a
        check per name with ok and detail.
        """
        data = scenarios["delivered"].health.json()
        assert set(data) == {"healthy", "stats", "failure_rate", "threshold", "window", "checks"}
        assert set(data["stats"]) == {"total_sent", "total_failed", "by_channel", "by_type"}
        assert set(data["window"]) == {"seconds", "sent", "failed"}
        assert list(data["checks"]) == list(CHECKS)
        assert all(set(check) == {"ok", "detail"} for check in data["checks"].values())

    def test_no_deliveries_is_healthy(self, scenarios: dict[str, Scenario]) -> None:
        """A store nothing was delivered through, with a monitor ticking: healthy, rate
        0, exit 0; the text says every check passed.
        """
        run = scenarios["monitored"]
        assert run.health.returncode == 0, str(run.health)
        data = run.health.json()
        assert data["healthy"] is True
        assert data["failure_rate"] == 0.0
        assert data["stats"] == {
            "total_sent": 0,
            "total_failed": 0,
            "by_channel": {},
            "by_type": {},
        }
        lines = run.health_text.stdout.splitlines()
        assert lines[0] == "healthy: every check passed"
        assert "✓ delivery   no deliveries in the last 1 hour (unhealthy at 5% failed)" in lines

    def test_no_monitor_is_unhealthy(self, scenarios: dict[str, Scenario]) -> None:
        """The same empty store without a monitor's beat: exit 1, the monitor check
        failed and says to run ``chaperone monitor``; every other check passed.
        """
        run = scenarios["empty"]
        assert run.health.returncode == 1, str(run.health)
        data = run.health.json()
        assert data["healthy"] is False
        assert failed_checks(data) == ["monitor"]
        assert "`chaperone monitor`" in data["checks"]["monitor"]["detail"]
        assert run.health_text.returncode == 1
        lines = run.health_text.stdout.splitlines()
        assert lines[0] == "UNHEALTHY: monitor failed"
        assert any(line.startswith("✗ monitor    no monitor has ticked") for line in lines)

    def test_text_output(self, scenarios: dict[str, Scenario]) -> None:
        """The text form says which check failed, a line per check with its mark, the
        rate, and a row per channel.
        """
        run = scenarios["failing"]
        assert run.health_text.returncode == 1
        lines = run.health_text.stdout.splitlines()
        assert lines[0] == "UNHEALTHY: degraded, delivery failed"
        assert [line.split()[:2] for line in lines[1:7]] == [
            ["✓", "store"],
            ["✓", "monitor"],
            ["✓", "detection"],
            ["✓", "outbox"],
            ["✗", "degraded"],
            ["✗", "delivery"],
        ]
        assert lines[6] == (
            "✗ delivery   4 of 9 deliveries failed in the last 1 hour (44.44%; unhealthy at 5%)"
        )
        assert lines[7] == "all time: 5 sent, 4 failed"
        assert any("webhook" in line and "0" in line and "4" in line for line in lines[8:])

    def test_threshold_and_window_settings(
        self, scenarios: dict[str, Scenario], tmp_path: Path
    ) -> None:
        """CHAPERONE_HEALTH_FAILURE_THRESHOLD=60 makes 44 % pass the delivery check (the
        webhook's degraded part still fails health); --window 2m still sees the run; a
        bad threshold or window is a configuration error (exit 2).
        """
        run = scenarios["failing"]
        results = run_many(
            {
                "lenient": Invocation(
                    ("health", "--json", "--window", "2m"),
                    run.folder,
                    {**run.env, "CHAPERONE_HEALTH_FAILURE_THRESHOLD": "60"},
                ),
                "bad-threshold": Invocation(
                    ("health",),
                    tmp_path,
                    clean_environ(tmp_path, CHAPERONE_HEALTH_FAILURE_THRESHOLD="lots"),
                ),
                "bad-window": Invocation(("health", "--window", "2d"), tmp_path, run.env),
                "bad-store": Invocation(
                    ("health",), tmp_path, clean_environ(tmp_path, CHAPERONE_STORE="nope://x")
                ),
            }
        )
        lenient = results["lenient"]
        assert lenient.returncode == 1, str(lenient)
        assert failed_checks(lenient.json()) == ["degraded"]
        assert lenient.json()["window"] == {"seconds": 120, "sent": 5, "failed": 4}
        assert lenient.json()["threshold"] == 60.0
        for name in ("bad-threshold", "bad-window", "bad-store"):
            assert results[name].returncode == 2, str(results[name])
        assert "CHAPERONE_HEALTH_FAILURE_THRESHOLD" in results["bad-threshold"].stderr
        assert "1m to 1d" in results["bad-window"].stderr
        assert "CHAPERONE_STORE" in results["bad-store"].stderr


# -- chaperone serve ----------------------------------------------------------------------


@attrs.frozen
class Scrape:
    """What one ``serve`` answered, and what it printed once stopped."""

    health: httpx.Response
    metrics: httpx.Response
    served: Served
    exit_code: int


@pytest.fixture(scope="module")
def scrapes(scenarios: dict[str, Scenario]) -> dict[str, Scrape]:
    """``serve`` on the failing and the delivered stores: GET /health and /metrics each,
    then SIGTERM.
    """
    results = {}
    for name in ("failing", "delivered"):
        run = scenarios[name]
        with serving(run.env, run.folder) as served, httpx.Client(timeout=10) as client:
            health = client.get(f"{served.url}/health")
            metrics = client.get(f"{served.url}/metrics")
            exit_code = served.stop()
        results[name] = Scrape(health, metrics, served, exit_code)
    return results


def metric_samples(text: str) -> dict[str, list[Any]]:
    """Samples by metric family name, parsed as Prometheus would."""
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


class TestServeEndpoints:
    """``GET /health`` and ``GET /metrics`` answer from the store."""

    def test_listens_on_loopback_with_the_real_port(self, scrapes: dict[str, Scrape]) -> None:
        """With --port 0 the printed URL names 127.0.0.1 and the port taken."""
        url = httpx.URL(scrapes["delivered"].served.url)
        assert url.host == "127.0.0.1"
        assert url.port is not None
        assert url.port > 0

    def test_health_unhealthy_is_503(
        self, scrapes: dict[str, Scrape], scenarios: dict[str, Scenario]
    ) -> None:
        """The failing store: 503, the same JSON as ``chaperone health --json`` (but
        for the details' timings), naming the degraded and delivery checks.
        """
        response = scrapes["failing"].health
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/json"
        expected = scenarios["failing"].health.json()
        assert without_details(response.json()) == without_details(expected)
        assert failed_checks(response.json()) == ["degraded", "delivery"]

    def test_health_healthy_is_200(
        self, scrapes: dict[str, Scrape], scenarios: dict[str, Scenario]
    ) -> None:
        """The delivered store: 200, healthy, the same stats as the command."""
        response = scrapes["delivered"].health
        assert response.status_code == 200
        expected = scenarios["delivered"].health.json()
        assert without_details(response.json()) == without_details(expected)
        assert response.json()["healthy"] is True

    def test_metrics_match_the_health_command(
        self, scrapes: dict[str, Scrape], scenarios: dict[str, Scenario]
    ) -> None:
        """The Prometheus text parses; per-channel sums of the counters, the failure
        rate and the health gauge agree with ``chaperone health --json``.
        """
        response = scrapes["failing"].metrics
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
        samples = metric_samples(response.text)
        expected = scenarios["failing"].health.json()
        for family, outcome in (
            ("chaperone_alerts_sent", "sent"),
            ("chaperone_alerts_failed", "failed"),
        ):
            by_channel: dict[str, float] = {}
            for sample in samples[family]:
                if sample.name.endswith("_total"):
                    channel = sample.labels["channel"]
                    by_channel[channel] = by_channel.get(channel, 0) + sample.value
            assert by_channel == {
                channel: counts[outcome]
                for channel, counts in expected["stats"]["by_channel"].items()
            }
        [rate] = samples["chaperone_delivery_failure_rate_percent"]
        assert round(rate.value, 2) == expected["failure_rate"]
        [healthy] = samples["chaperone_delivery_healthy"]
        assert healthy.value == 0.0
        [threshold] = samples["chaperone_delivery_failure_threshold_percent"]
        assert threshold.value == 5.0
        checks = {s.labels["check"]: s.value for s in samples["chaperone_health_check"]}
        failing = {"degraded", "delivery"}
        assert checks == {name: 0.0 if name in failing else 1.0 for name in CHECKS}
        [overall] = samples["chaperone_healthy"]
        assert overall.value == 0.0

    def test_metrics_labels_are_channel_and_type(self, scrapes: dict[str, Scrape]) -> None:
        """One sent and one failed counter per (channel, type) pair delivered to."""
        samples = metric_samples(scrapes["delivered"].metrics.text)
        sent = {
            (s.labels["channel"], s.labels["type"]): s.value
            for s in samples["chaperone_alerts_sent"]
            if s.name == "chaperone_alerts_sent_total"
        }
        assert len(sent) == 8
        assert set(sent.values()) == {1.0}
        assert {channel for channel, _ in sent} == {"webhook", "database"}

    def test_sigterm_stops_it_cleanly(self, scrapes: dict[str, Scrape]) -> None:
        """SIGTERM: exit 0, "stopped" printed, no traceback."""
        scrape = scrapes["delivered"]
        assert scrape.exit_code == 0, scrape.served.stderr
        assert scrape.served.stdout.splitlines()[-1] == "stopped"
        assert "Traceback" not in scrape.served.stderr


class TestServeRequests:
    """Paths, methods, the token, signals and a taken port."""

    def test_other_paths_404_and_methods_405(self, tmp_path: Path) -> None:
        """/ redirects to the pages' prefix and /healthz is 404; POST and DELETE /health
        are 405 naming GET; a query string is ignored; SIGINT stops it too.
        """
        env = clean_environ(tmp_path, CHAPERONE_HEALTH_REQUIRE_MONITOR="false")
        with serving(env, tmp_path) as served:
            with httpx.Client(timeout=10) as client:
                root = client.get(f"{served.url}/")
                assert (root.status_code, root.headers["location"]) == (307, "/chaperone/")
                assert client.get(f"{served.url}/healthz").status_code == 404
                post = client.post(f"{served.url}/health", content=b"{}")
                delete = client.delete(f"{served.url}/metrics")
                query = client.get(f"{served.url}/health?verbose=1")
            assert served.stop(signal.SIGINT) == 0
        assert (post.status_code, post.headers["allow"]) == (405, "GET")
        assert delete.status_code == 405
        assert query.status_code == 200

    def test_token_required_and_never_shown(self, tmp_path: Path) -> None:
        """With CHAPERONE_SERVE_TOKEN: 401 without it, with a wrong one or another
        scheme; 200 with it. At debug level, the token (sent in a header, and by mistake
        in a query string) appears nowhere in what the command printed.
        """
        env = clean_environ(
            tmp_path,
            CHAPERONE_SERVE_TOKEN=TOKEN,
            CHAPERONE_LOG_LEVEL="debug",
            CHAPERONE_HEALTH_REQUIRE_MONITOR="false",
        )
        with serving(env, tmp_path) as served:
            with httpx.Client(timeout=10) as client:
                health = f"{served.url}/health"
                missing = client.get(health)
                wrong = client.get(health, headers={"Authorization": f"Bearer {TOKEN}x"})
                basic = client.get(health, headers={"Authorization": f"Basic {TOKEN}"})
                good = client.get(health, headers={"Authorization": f"Bearer {TOKEN}"})
                metrics = client.get(
                    f"{served.url}/metrics", headers={"Authorization": f"bearer {TOKEN}"}
                )
                in_query = client.get(f"{health}?token={TOKEN}")
                unknown = client.get(f"{served.url}/nope")
            served.stop()
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"].startswith("Bearer")
        assert TOKEN not in missing.text
        assert wrong.status_code == 401
        assert basic.status_code == 401
        assert in_query.status_code == 401
        assert unknown.status_code == 401  # no path is revealed without the token
        assert good.status_code == 200
        assert good.json()["healthy"] is True
        assert metrics.status_code == 200
        printed = served.stdout + served.stderr
        assert '"path": "/health?token=' in printed  # the request was logged ...
        assert TOKEN not in printed  # ... with the token masked

    def test_taken_port_exits_1(self, tmp_path: Path) -> None:
        """A port something else listens on: one line naming it, exit 1."""
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            result = run_cli(
                "serve", "--port", str(port), cwd=tmp_path, env=clean_environ(tmp_path)
            )
        assert result.returncode == 1, str(result)
        assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
        assert "Traceback" not in result.stderr

    def test_bad_port_setting_exits_2(self, tmp_path: Path) -> None:
        """CHAPERONE_SERVE_PORT out of range is a configuration error naming the key."""
        result = run_cli(
            "serve", cwd=tmp_path, env=clean_environ(tmp_path, CHAPERONE_SERVE_PORT="70000")
        )
        assert result.returncode == 2, str(result)
        assert "CHAPERONE_SERVE_PORT" in result.stderr


class TestStoreFaults:
    """Health says what is wrong with the store, quickly, and recovers with it."""

    def test_health_on_a_locked_store_answers_quickly(self, tmp_path: Path) -> None:
        """Another connection holds the file's write lock: ``chaperone health --json``
        exits 1 well within SQLite's own 10 s wait; the store opens (a locked file is read
        as usual) and answers reads, so only the store check failed, its detail asking
        whether the store is locked.
        """
        ticking(tmp_path)
        holder = sqlite3.connect(tmp_path / STORE_FILE, isolation_level=None, timeout=0)
        holder.execute("BEGIN IMMEDIATE")
        try:
            started = time.monotonic()
            result = run_cli("health", "--json", cwd=tmp_path, env=clean_environ(tmp_path))
            took = time.monotonic() - started
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert result.returncode == 1, str(result)
        assert took < QUICK_ANSWER, took
        data = result.json()
        assert failed_checks(data) == ["store"]
        assert "locked" in data["checks"]["store"]["detail"]
        assert "Traceback" not in result.stderr

    def test_health_on_a_refusing_redis(self, tmp_path: Path) -> None:
        """A Redis URL where nothing listens: exit 1, JSON naming the refused connection
        for the store, every other check "not checked" for the same reason.
        """
        url = "redis://127.0.0.1:1/0?retries=0&connect_timeout=0.5"
        result = run_cli(
            "health", "--json", cwd=tmp_path, env=clean_environ(tmp_path, CHAPERONE_STORE=url)
        )
        assert result.returncode == 1, str(result)
        data = result.json()
        assert failed_checks(data) == list(CHECKS)
        assert "refused" in data["checks"]["store"]["detail"].lower()
        assert data["checks"]["outbox"]["detail"].startswith("not checked: ")
        assert data["stats"] is None

    def test_serve_on_a_locked_store_is_503_then_200(self, tmp_path: Path) -> None:
        """``serve`` started while the file is locked: it listens at once, /health
        answers 503 naming the store within a few seconds; once the lock goes, 200 without
        a restart.
        """
        ticking(tmp_path)
        holder = sqlite3.connect(tmp_path / STORE_FILE, isolation_level=None, timeout=0)
        holder.execute("BEGIN IMMEDIATE")
        locked = True
        try:
            with (
                serving(clean_environ(tmp_path), tmp_path) as served,
                httpx.Client(timeout=30) as client,
            ):
                started = time.monotonic()
                during = client.get(f"{served.url}/health")
                took = time.monotonic() - started
                holder.execute("ROLLBACK")
                locked = False
                after = poll_until_healthy(client, f"{served.url}/health")
        finally:
            if locked:
                holder.execute("ROLLBACK")
            holder.close()
        assert during.status_code == 503
        assert took < QUICK_ANSWER, took
        assert failed_checks(during.json())[0] == "store"
        assert after.status_code == 200, after.text

    def test_serve_on_a_file_that_is_not_a_database(self, tmp_path: Path) -> None:
        """``serve`` on a corrupt file keeps running: 503 naming the file's fault, and
        200 once a good store replaces it, without a restart.
        """
        (tmp_path / STORE_FILE).write_text("not a database\n" * 100, encoding="utf-8")
        with (
            serving(clean_environ(tmp_path), tmp_path) as served,
            httpx.Client(timeout=30) as client,
        ):
            corrupt = client.get(f"{served.url}/health")
            (tmp_path / STORE_FILE).unlink()
            ticking(tmp_path)
            after = poll_until_healthy(client, f"{served.url}/health")
        assert corrupt.status_code == 503
        assert "file is not a database" in corrupt.json()["checks"]["store"]["detail"]
        assert after.status_code == 200, after.text


def poll_until_healthy(client: httpx.Client, url: str, timeout: float = 30.0) -> httpx.Response:
    """GET ``url`` until it answers 200 or ``timeout`` seconds passed; the last answer."""
    deadline = time.monotonic() + timeout
    response = client.get(url)
    while response.status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.2)  # waiting for a real process to recover, not a window under test
        response = client.get(url)
    return response


class TestExposure:
    """Where ``serve`` may listen without authentication."""

    @pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.53", "::1"])
    def test_loopback_is_allowed(self, address: str) -> None:
        """Loopback addresses need no authentication."""
        assert exposure_problem(address, Settings()) is None

    @pytest.mark.parametrize("address", ["0.0.0.0", "::", "192.0.2.7"])  # noqa: S104
    def test_other_addresses_need_authentication(self, address: str) -> None:
        """Any other address is refused naming the settings, unless a token, users or a
        trusted header are configured; the token never appears.
        """
        problem = exposure_problem(address, Settings())
        assert problem is not None
        assert "reachable from other machines" in problem
        assert "CHAPERONE_SERVE_TOKEN" in problem
        assert "serve.users" in problem
        with_token = attrs.evolve(Settings(), health=HealthSettings(token=TOKEN))
        assert exposure_problem(address, with_token) is None
        with_header = attrs.evolve(Settings(), serve=ServeSettings(trusted_header="X-User"))
        assert exposure_problem(address, with_header) is None

    def test_serve_on_every_address_without_auth_exits_2(self, tmp_path: Path) -> None:
        """``serve --host 0.0.0.0`` without authentication: refused before it listens,
        exit 2, one line naming the setting.
        """
        env = clean_environ(tmp_path, CHAPERONE_HEALTH_REQUIRE_MONITOR="false")
        result = run_cli("serve", "--host", "0.0.0.0", "--port", "0", cwd=tmp_path, env=env)  # noqa: S104
        assert result.returncode == 2, str(result)
        assert "serve.token" in result.stderr
        assert "Traceback" not in result.stderr
