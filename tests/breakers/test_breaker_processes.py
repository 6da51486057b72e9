"""One breaker shared by four processes on one SQLite file: failures everywhere, at the
same moment, open it once (one ``CircuitBreakerOpened`` queued, one firing
``circuit_breaker`` alert); after the reset timeout, successful trials close it once (one
``CircuitBreakerClosed``, the alert resolves). The processes use the real clock, with a
half-second reset timeout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest

from chaperone import Chaperone
from chaperone._clock import SystemClock
from chaperone._dispatch import DispatchReport
from chaperone._events import CircuitBreakerClosed, CircuitBreakerOpened
from chaperone._monitor import Monitor
from chaperone._plugins import PluginHost
from chaperone.builtin.database_channel import read_history
from chaperone.config import load_settings

PROCESSES = 4
SERVICE = "payment-gateway"
FAILURE_THRESHOLD = 2
RESET_TIMEOUT = 0.5
SUCCESS_THRESHOLD = 3
TIMEOUT = 60.0

WORKER = f"""
import json, os, sys, time
from pathlib import Path

from chaperone._clock import SystemClock
from chaperone.breakers import CircuitOpenError, circuit_breaker
from chaperone.store import SQLiteStore
from chaperone.supervision import Supervisor


class ServiceDownError(ConnectionError):
    pass


def fail():
    raise ServiceDownError("503 from the gateway")


def fail_together():
    # Admitted while closed in every process, fail in all at once: the shared count
    # goes 1..{PROCESSES}, so several processes see it at or past the threshold.
    Path(f"arrived-{{os.getpid()}}").touch()
    deadline = time.monotonic() + 30
    while len(list(Path().glob("arrived-*"))) < {PROCESSES} and time.monotonic() < deadline:
        time.sleep(0.002)
    fail()


def succeed():
    return "ok"


path = Path(sys.argv[1])
clock = SystemClock()
store = SQLiteStore(path, clock, "sqlite:///" + str(path))
breaker = circuit_breaker(
    {SERVICE!r},
    failure_threshold={FAILURE_THRESHOLD},
    reset_timeout={RESET_TIMEOUT},
    success_threshold={SUCCESS_THRESHOLD},
    supervisor=Supervisor(store, clock),
)
print("ready", flush=True)
for line in sys.stdin:
    outcomes, report = [], {{}}
    if line.strip() == "fail":
        for attempt in range(100):
            try:
                breaker.call(fail_together if attempt == 0 else fail)
            except ServiceDownError:
                outcomes.append("failed")
            except CircuitOpenError as exc:
                outcomes.append("rejected")
                report["retry_at"] = exc.retry_at.timestamp()
                report["message"] = str(exc)
                break
    else:
        for _ in range(2 * {SUCCESS_THRESHOLD}):
            try:
                outcomes.append(breaker.call(succeed))
            except CircuitOpenError:
                outcomes.append("rejected")
    report["outcomes"] = outcomes
    report["state"] = breaker.state.value
    print(json.dumps(report), flush=True)
store.close()
"""


class Workers:
    """``PROCESSES`` interpreters with the breaker built, each waiting for a command on
    standard input; :meth:`command` sends it to all at once and collects their reports."""

    def __init__(self, database: Path, cwd: Path, env: dict[str, str]) -> None:
        self.cwd = cwd
        self.errors = [
            (cwd / f"worker-{index}.stderr").open("w", encoding="utf-8")
            for index in range(PROCESSES)
        ]
        self.processes = [
            subprocess.Popen(
                [sys.executable, "-c", WORKER, str(database)],
                cwd=cwd,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
                text=True,
                encoding="utf-8",
            )
            for errors in self.errors
        ]

    def read_lines(self) -> list[str]:
        """One line from each worker; a watchdog kills them all past the timeout."""
        watchdog = threading.Timer(TIMEOUT, self.kill)
        watchdog.start()
        try:
            lines = []
            for process in self.processes:
                assert process.stdout is not None
                lines.append(process.stdout.readline().strip())
        finally:
            watchdog.cancel()
        if not all(lines):
            self.fail_with_logs(f"a worker ended early: {lines!r}")
        return lines

    def command(self, command: str) -> list[dict[str, Any]]:
        """Send ``command`` to every worker (each is already blocked reading) and return
        their reports."""
        for process in self.processes:
            assert process.stdin is not None
            process.stdin.write(command + "\n")
            process.stdin.flush()
        return [json.loads(line) for line in self.read_lines()]

    def kill(self) -> None:
        for process in self.processes:
            process.kill()

    def close(self) -> None:
        for process in self.processes:
            if process.stdin is not None:
                process.stdin.close()
        for process in self.processes:
            try:
                process.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()
        for errors in self.errors:
            errors.close()
        for process in self.processes:
            assert process.returncode == 0, self.logs()

    def logs(self) -> str:
        return "\n".join(
            f"--- worker {index} ---\n{path.read_text(encoding='utf-8')}"
            for index, path in enumerate(sorted(self.cwd.glob("worker-*.stderr")))
        )

    def fail_with_logs(self, message: str) -> None:
        pytest.fail(f"{message}\n{self.logs()}")


@attrs.frozen
class Setup:
    """The workers, and a runtime (database channel) on the same SQLite file."""

    workers: Workers
    runtime: Chaperone


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    database = tmp_path / "chaperone.db"
    env = {key: value for key, value in os.environ.items() if not key.startswith("CHAPERONE_")}
    settings = load_settings(
        {
            "CHAPERONE_STORE": f"sqlite:///{database}",
            "CHAPERONE_ALERTING_ENABLED": "true",
            "CHAPERONE_ALERT_CHANNELS": "database",
            "CHAPERONE_LOG_LEVEL": "warning",
        },
        tmp_path,
    )
    workers = Workers(database, tmp_path, env)
    try:
        assert workers.read_lines() == ["ready"] * PROCESSES
        with Chaperone(settings, clock=SystemClock(), plugins=PluginHost(entry_points=False)) as rt:
            yield Setup(workers, rt)
    finally:
        workers.close()


def breaker_history(runtime: Chaperone) -> list[tuple[str, str, str]]:
    """(alert status, key, delivery status) of every circuit_breaker record, oldest first."""
    return [
        (record["alert_status"], record["key"], record["status"])
        for record in reversed(read_history(runtime.store, 1000))
        if record["type"] == "circuit_breaker"
    ]


def event_types(reports: Sequence[DispatchReport]) -> list[type[object]]:
    return [type(report.event) for report in reports]


class TestSharedBreaker:
    def test_opens_once_and_closes_once_across_processes(self, setup: Setup) -> None:
        """Four processes failing together open the breaker once (one queued report, one
        firing alert); after the reset timeout their successful trials close it once (one
        queued report, the alert resolved)."""
        workers, monitor = setup.workers, Monitor(setup.runtime)

        failing = workers.command("fail")
        for report in failing:
            assert report["outcomes"][0] == "failed", report
            assert report["outcomes"][-1] == "rejected", report
            assert set(report["outcomes"][:-1]) == {"failed"}, report
            assert report["state"] == "open", report
            assert SERVICE in report["message"]
        assert sum(len(report["outcomes"]) - 1 for report in failing) >= PROCESSES
        retry_at = {report["retry_at"] for report in failing}
        assert len(retry_at) == 1  # one opening, seen alike by all

        opened = monitor.tick()
        assert event_types(opened) == [CircuitBreakerOpened]
        event = opened[0].event
        assert isinstance(event, CircuitBreakerOpened)
        assert event.service == SERVICE
        assert event.failure_count >= FAILURE_THRESHOLD
        assert event.retry_at is not None
        assert event.retry_at.timestamp() == pytest.approx(retry_at.pop(), abs=1e-5)
        assert [alert.delivered for alert in opened[0].alerts] == [True]
        assert breaker_history(setup.runtime) == [("firing", SERVICE, "delivered")]

        wait = event.retry_at.timestamp() - time.time()
        assert wait <= RESET_TIMEOUT
        time.sleep(max(0.0, wait) + 0.05)  # the reset timeout, in real time (bounded)

        succeeding = workers.command("succeed")
        for report in succeeding:
            assert report["outcomes"] == ["ok"] * (2 * SUCCESS_THRESHOLD), report
            assert report["state"] == "closed", report

        closed = monitor.tick()
        assert event_types(closed) == [CircuitBreakerClosed]
        assert [alert.delivered for alert in closed[0].alerts] == [True]
        assert breaker_history(setup.runtime) == [
            ("firing", SERVICE, "delivered"),
            ("resolved", SERVICE, "delivered"),
        ]
        assert monitor.tick() == []
