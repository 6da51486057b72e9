"""``chaperone run -- CMD``, run as a person runs it: the real console script, real child
processes, a fresh SQLite file per run, real time.

The runs are mostly children sleeping, so independent ones start together in a
module-scoped fixture and each test checks one aspect of their results. Each run has
its own folder and store, so their alerts never mix.
"""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

_TESTS = str(Path(__file__).resolve().parent.parent)
if _TESTS not in sys.path:  # until pytest's configuration says pythonpath = ["tests"]
    sys.path.insert(0, _TESTS)

from helpers.cli import (  # noqa: E402
    CHAPERONE,
    STORE_FILE,
    CliResult,
    clean_environ,
    finish_cli,
    run_cli,
    start_cli,
    stored_history,
    stored_jobs,
)

PYTHON = sys.executable
SLEEP_5 = "import time; time.sleep(5)"
SLEEP_6 = "import time; time.sleep(6)"
RUN_TIMEOUT = 40.0
"""How long any one `chaperone run` may take before the test gives up on it."""


def alerts(history: list[dict[str, Any]], channel: str = "database") -> list[tuple[str, str]]:
    """(type, firing/resolved) of each alert one channel recorded, oldest first."""
    return [
        (record["type"], record["alert_status"])
        for record in reversed(history)
        if record["channel"] == channel
    ]


def fired_while_running(run: Run, alert_type: str) -> bool:
    """Whether the firing alert was delivered at least a second before the job ended
    (so by chaperone's own detection while the child ran, not at its end)."""
    (fired,) = [
        r
        for r in run.history
        if r["type"] == alert_type and r["alert_status"] == "firing" and r["channel"] == "database"
    ]
    finished = datetime.fromisoformat(run.job["finished_at"])
    return datetime.fromisoformat(fired["recorded_at"]) <= finished - timedelta(seconds=1)


def wait_for(path: Path, process: subprocess.Popen[str], timeout: float = 20.0) -> None:
    """Wait (bounded) until ``path`` exists; fail if the process ended first."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            stdout, stderr = process.communicate()
            pytest.fail(f"the run ended before {path.name} appeared:\n{stdout}\n{stderr}")
        if time.monotonic() > deadline:
            process.kill()
            process.communicate()
            pytest.fail(f"{path.name} did not appear within {timeout}s")
        time.sleep(0.02)


@attrs.frozen
class Run:
    """One finished ``chaperone run``: its folder, what it printed, what it left."""

    folder: Path
    result: CliResult
    history: list[dict[str, Any]]
    jobs: list[dict[str, Any]]

    @property
    def job(self) -> dict[str, Any]:
        """The one job the run supervised."""
        assert len(self.jobs) == 1, self.jobs
        return self.jobs[0]


RUNS: dict[str, tuple[str, ...]] = {
    "timeout": ("--timeout", "2", "--", PYTHON, "-c", SLEEP_5),
    "kill": (
        "--timeout",
        "2",
        "--kill-on-timeout",
        "--",
        PYTHON,
        "-c",
        "import pathlib, time; time.sleep(5); pathlib.Path('finished').write_text('yes')",
    ),
    "stuck": ("--heartbeat-interval", "1", "--missed-heartbeats", "2", "--", PYTHON, "-c", SLEEP_6),
    "exit3": ("--name", "exits-3", "--", PYTHON, "-c", "raise SystemExit(3)"),
    "killed": (
        "--",
        PYTHON,
        "-c",
        "import os, signal; os.kill(os.getpid(), signal.SIGKILL)",
    ),
    "environment": (
        "--name",
        "env-check",
        "--",
        PYTHON,
        "-c",
        "import json, os; print(json.dumps({k: os.environ.get(k) for k in "
        "('CHAPERONE_SUPERVISION_ID', 'CHAPERONE_STORE')}))",
    ),
    "elsewhere": (
        "--name",
        "changes-directory",
        "--",
        PYTHON,
        "-c",
        "import os, subprocess, sys; os.mkdir('sub'); os.chdir('sub'); "
        f"sys.exit(subprocess.run([{str(CHAPERONE)!r}, 'heartbeat', '--progress', '1/2'])"
        ".returncode)",
    ),
    "missing": ("--", "/nonexistent/command-of-nobody"),
    "no-timeout": ("--kill-on-timeout", "--", PYTHON, "-c", "pass"),
    "no-command": ("--timeout", "3"),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """Every run of RUNS, started together, each in a folder and store of its own
    (``elsewhere`` with a relative store URL, so that the child's change of directory
    matters)."""
    started: dict[str, tuple[Path, tuple[str, ...], subprocess.Popen[str]]] = {}
    for name, args in RUNS.items():
        folder = tmp_path_factory.mktemp(name)
        env = clean_environ(folder)
        if name == "elsewhere":
            env["CHAPERONE_STORE"] = f"sqlite:///{STORE_FILE}"
        full = ("run", *args)
        started[name] = (folder, full, start_cli(full, cwd=folder, env=env))
    finished: dict[str, Run] = {}
    for name, (folder, full, process) in started.items():
        result = finish_cli(process, full, RUN_TIMEOUT)
        has_store = (folder / STORE_FILE).exists()
        finished[name] = Run(
            folder=folder,
            result=result,
            history=stored_history(folder) if has_store else [],
            jobs=stored_jobs(folder) if has_store else [],
        )
    return finished


class TestTimeout:
    """--timeout: a job_timeout alert while the child runs on; --kill-on-timeout stops it."""

    def test_a_job_timeout_alert_shows_in_the_history(self, runs: dict[str, Run]) -> None:
        """`run --timeout 2 -- sleep 5` delivers one job_timeout alert, which
        `chaperone history --json` lists, and exits with the child's status, 0."""
        run = runs["timeout"]
        assert run.result.returncode == 0, str(run.result)
        history = run_cli("history", "--json", cwd=run.folder, env=clean_environ(run.folder))
        assert history.returncode == 0, str(history)
        records = history.json()
        firing = [
            r for r in records if r["type"] == "job_timeout" and r["alert_status"] == "firing"
        ]
        assert {r["channel"] for r in firing} == {"log", "database"}
        assert len(firing) == 2
        assert {r["key"] for r in firing} == {run.job["supervision_id"]}

    def test_the_end_of_a_timed_out_job_resolves_its_alert(self, runs: dict[str, Run]) -> None:
        """When the timed-out child finally ends, the resolved job_timeout follows."""
        run = runs["timeout"]
        assert alerts(run.history) == [("job_timeout", "firing"), ("job_timeout", "resolved")]
        assert run.job["state"] == "completed"
        assert run.job["duration"] >= 5
        assert fired_while_running(run, "job_timeout")

    def test_kill_on_timeout_stops_the_child_within_a_second(self, runs: dict[str, Run]) -> None:
        """With --kill-on-timeout the child is gone within a second of the limit: the
        job ended (after the child was reaped) before 3 s, the child never finished,
        and chaperone exits as the child did, killed by SIGTERM (128 + 15)."""
        run = runs["kill"]
        assert run.result.returncode == 128 + signal.SIGTERM, str(run.result)
        assert not (run.folder / "finished").exists()
        job = run.job
        assert job["state"] == "failed"
        assert "timed out" in job["error"]
        assert 2.0 <= job["duration"] <= 3.0, job
        assert ("job_timeout", "firing") in alerts(run.history)


class TestStuck:
    """--heartbeat-interval: a child that never heartbeats is reported stuck."""

    def test_a_silent_child_is_reported_stuck_then_resolved(self, runs: dict[str, Run]) -> None:
        """`run --heartbeat-interval 1 --missed-heartbeats 2 -- sleep 6` delivers one
        job_stuck alert, resolved when the child ends; chaperone exits 0."""
        run = runs["stuck"]
        assert run.result.returncode == 0, str(run.result)
        assert alerts(run.history) == [("job_stuck", "firing"), ("job_stuck", "resolved")]
        assert {r["key"] for r in run.history} == {run.job["supervision_id"]}
        assert fired_while_running(run, "job_stuck")
        assert "[FIRING] Job Stuck" in run.result.stderr


class TestExitStatus:
    """chaperone exits with the child's status, the shell's way."""

    def test_an_exit_status_is_passed_through(self, runs: dict[str, Run]) -> None:
        """A child exiting 3 makes chaperone exit 3, and the job is recorded failed."""
        run = runs["exit3"]
        assert run.result.returncode == 3, str(run.result)
        assert run.job["name"] == "exits-3"
        assert run.job["state"] == "failed"
        assert run.job["error"] == "exit status 3"

    def test_a_child_killed_by_a_signal_gives_128_plus_its_number(
        self, runs: dict[str, Run]
    ) -> None:
        """A child killed by SIGKILL makes chaperone exit 137, and the job's error says so."""
        run = runs["killed"]
        assert run.result.returncode == 128 + signal.SIGKILL, str(run.result)
        assert run.job["state"] == "failed"
        assert run.job["error"] == "killed by signal SIGKILL"

    def test_a_missing_command_exits_127(self, runs: dict[str, Run]) -> None:
        """A command that cannot be started exits 127, as a shell does, saying why."""
        run = runs["missing"]
        assert run.result.returncode == 127, str(run.result)
        assert "cannot start" in run.result.stderr

    @pytest.mark.parametrize("name", ["no-timeout", "no-command"])
    def test_usage_errors_exit_2(self, runs: dict[str, Run], name: str) -> None:
        """--kill-on-timeout without --timeout, or no command at all, is a usage error."""
        run = runs[name]
        assert run.result.returncode == 2, str(run.result)
        assert run.jobs == []


class TestChildEnvironment:
    """The child learns its supervision id and where the store is."""

    def test_the_child_gets_its_id_and_the_store(self, runs: dict[str, Run]) -> None:
        """CHAPERONE_SUPERVISION_ID is the job's id; CHAPERONE_STORE is the store."""
        run = runs["environment"]
        assert run.result.returncode == 0, str(run.result)
        seen = json.loads(run.result.stdout.strip().splitlines()[-1])
        assert seen["CHAPERONE_SUPERVISION_ID"] == run.job["supervision_id"]
        assert seen["CHAPERONE_STORE"] == f"sqlite:///{(run.folder / STORE_FILE).resolve()}"
        assert run.job["name"] == "env-check"
        assert run.job["state"] == "completed"

    def test_a_child_in_another_directory_still_reaches_the_store(
        self, runs: dict[str, Run]
    ) -> None:
        """With a relative store URL, a child that changed directory still heartbeats
        into the job's store."""
        run = runs["elsewhere"]
        assert run.result.returncode == 0, str(run.result)
        assert run.job["progress"] == {"current": 1, "total": 2}
        assert run.job["last_heartbeat"] is not None
        assert not (run.folder / "sub" / STORE_FILE).exists()


# -- signals ------------------------------------------------------------------------------

SIGNAL_CHILD = """
import pathlib, signal, sys, time
def on_term(signum, frame):
    pathlib.Path("received").write_text(str(signum))
    sys.exit(42)
signal.signal(signal.SIGTERM, on_term)
pathlib.Path("ready").write_text("yes")
try:
    time.sleep(20)
except KeyboardInterrupt:
    pathlib.Path("received").write_text(str(int(signal.SIGINT)))
    sys.exit(43)
"""


class TestSignals:
    """SIGTERM and SIGINT sent to chaperone reach the child."""

    def test_sigterm_and_sigint_are_forwarded(self, tmp_path: Path) -> None:
        """A SIGTERM to `chaperone run` reaches the child, which exits 42; a SIGINT
        reaches it as KeyboardInterrupt, and it exits 43; chaperone exits the same."""
        started: dict[signal.Signals, tuple[Path, tuple[str, ...], subprocess.Popen[str]]] = {}
        for sent in (signal.SIGTERM, signal.SIGINT):
            folder = tmp_path / sent.name
            folder.mkdir()
            args = ("run", "--name", sent.name, "--", PYTHON, "-c", SIGNAL_CHILD)
            started[sent] = (folder, args, start_cli(args, cwd=folder, env=clean_environ(folder)))
        for sent, (folder, _args, process) in started.items():
            wait_for(folder / "ready", process)
            process.send_signal(sent)
        results = {
            sent: finish_cli(process, args, RUN_TIMEOUT)
            for sent, (_folder, args, process) in started.items()
        }
        assert results[signal.SIGTERM].returncode == 42, str(results[signal.SIGTERM])
        assert results[signal.SIGINT].returncode == 43, str(results[signal.SIGINT])
        for sent, (folder, _args, _process) in started.items():
            assert (folder / "received").read_text() == str(int(sent))
            (job,) = stored_jobs(folder)
            assert job["state"] == "failed"


# -- a child heartbeating with `chaperone heartbeat` --------------------------------------

HEARTBEAT_CHILD = """
import json, subprocess, sys, time
chaperone, period, duration, out = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
start = time.monotonic()
calls = []
next_at = start
while time.monotonic() - start < duration:
    began = time.monotonic()
    code = subprocess.run([chaperone, "heartbeat"], capture_output=True).returncode
    ended = time.monotonic()
    calls.append({"start": began - start, "took": ended - began, "code": code})
    next_at += period
    time.sleep(max(0.0, next_at - time.monotonic()))
with open(out, "w") as file:
    json.dump(calls, file)
"""


@attrs.frozen
class Pace:
    """How fast `chaperone heartbeat` starts here, and the heartbeat plan that follows."""

    startup: float
    """Seconds one `chaperone heartbeat` takes, measured (the slowest of two)."""
    period: float
    interval: int
    missed: int
    duration: float

    @property
    def stuck_after(self) -> float:
        """Silence that makes the job stuck."""
        return self.interval * self.missed


def measure_pace(folder: Path, env: Mapping[str, str]) -> Pace:
    """Time `chaperone heartbeat` (twice, for an unknown job) and plan the heartbeats:
    every half second as the issue asks when it starts that fast, else at the pace its
    start-up allows, with a stuck limit of at least three heartbeat gaps and a run long
    enough that a silent child would be stuck."""
    took = []
    for _ in range(2):
        began = time.monotonic()
        subprocess.run(
            [str(CHAPERONE), "heartbeat", "--id", "nobody"],
            cwd=folder,
            env=dict(env),
            capture_output=True,
            check=False,
            timeout=60,
        )
        took.append(time.monotonic() - began)
    startup = max(took)
    period = 0.5 if startup <= 0.4 else round(startup * 1.2, 2)
    gap = max(period, startup)
    missed = max(2, math.ceil(3 * gap))
    duration = max(6.0, missed + 2.0)
    return Pace(startup=startup, period=period, interval=1, missed=missed, duration=duration)


class TestHeartbeatingChild:
    """A child that heartbeats with `chaperone heartbeat` is never reported stuck."""

    def test_a_heartbeating_child_gets_no_stuck_alert(self, tmp_path: Path) -> None:
        """A child calling `chaperone heartbeat` on a steady pace for the whole run
        (every 0.5 s when the command starts that fast; else as fast as it starts,
        measured) keeps up, and no job_stuck alert is delivered."""
        env = clean_environ(tmp_path)
        pace = measure_pace(tmp_path, env)
        calls_file = tmp_path / "calls.json"
        args = (
            "run",
            "--heartbeat-interval",
            str(pace.interval),
            "--missed-heartbeats",
            str(pace.missed),
            "--",
            PYTHON,
            "-c",
            HEARTBEAT_CHILD,
            str(CHAPERONE),
            str(pace.period),
            str(pace.duration),
            str(calls_file),
        )
        result = run_cli(*args, cwd=tmp_path, env=env, timeout=RUN_TIMEOUT)
        print(f"chaperone heartbeat start-up: {pace.startup:.2f}s; plan: {pace}")  # noqa: T201
        assert result.returncode == 0, str(result)
        calls = json.loads(calls_file.read_text())
        assert [call["code"] for call in calls] == [0] * len(calls), calls
        ends = [call["start"] + call["took"] for call in calls]
        gaps = [later - earlier for earlier, later in zip([0.0, *ends], ends, strict=False)]
        assert max(gaps) < pace.stuck_after, f"heartbeats fell behind: {calls}"
        assert len(calls) >= pace.duration / max(pace.period, pace.startup) / 2, calls
        history = stored_history(tmp_path)
        assert [r for r in history if r["type"] == "job_stuck"] == []
        (job,) = stored_jobs(tmp_path)
        assert job["state"] == "completed"
        assert job["last_heartbeat"] is not None
