"""``chaperone heartbeat``, ``chaperone monitor`` and ``chaperone jobs``, run as a person
runs them: the real console script, a fresh SQLite file, real job processes.

Jobs are put in the store the way job code does it (``supervise(...)`` and the
supervisor, in this process or in a job process of their own); the commands run
against the same file.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import pytest

_TESTS = str(Path(__file__).resolve().parent.parent)
if _TESTS not in sys.path:  # until pytest's configuration says pythonpath = ["tests"]
    sys.path.insert(0, _TESTS)

from chaperone import SystemClock  # noqa: E402
from chaperone.store import SQLiteStore  # noqa: E402
from chaperone.supervision import JobRecord, Supervisor, _keys, supervise  # noqa: E402
from chaperone.supervision._records import flush_interval  # noqa: E402
from helpers.cli import (  # noqa: E402
    STORE_FILE,
    CliResult,
    Invocation,
    clean_environ,
    finish_cli,
    run_cli,
    run_many,
    start_cli,
    stored_history,
)

TIMEOUT = 40.0


@contextmanager
def supervisor_in(folder: Path) -> Iterator[Supervisor]:
    """A supervisor on the store :func:`clean_environ` puts in ``folder``."""
    path = folder / STORE_FILE
    store = SQLiteStore(path, SystemClock(), f"sqlite:///{path.resolve()}")
    try:
        yield Supervisor(store, background=False)
    finally:
        store.close()


def old_job(supervisor: Supervisor, name: str, *, age: float, **settings: Any) -> str:
    """Write a running job that started ``age`` seconds ago; return its id."""
    record = JobRecord(
        supervision_id=str(uuid.uuid4()),
        name=name,
        started_at=supervisor.clock.timestamp() - age,
        **settings,
    )
    supervisor.write(record)
    return record.supervision_id


def firing(history: list[dict[str, Any]], alert_type: str) -> list[dict[str, Any]]:
    """The database channel's records of firing alerts of ``alert_type``."""
    return [
        r
        for r in history
        if r["type"] == alert_type and r["alert_status"] == "firing" and r["channel"] == "database"
    ]


def resolved(history: list[dict[str, Any]], alert_type: str) -> list[dict[str, Any]]:
    """The database channel's records of resolved alerts of ``alert_type``."""
    return [
        r
        for r in history
        if r["type"] == alert_type
        and r["alert_status"] == "resolved"
        and r["channel"] == "database"
    ]


# -- chaperone heartbeat ------------------------------------------------------------------


@attrs.frozen
class Heartbeats:
    """Jobs written before the heartbeat commands, and what each command did."""

    folder: Path
    ids: dict[str, str]
    results: dict[str, CliResult]
    after: dict[str, JobRecord | None]
    due: dict[str, float]


@pytest.fixture(scope="module")
def heartbeats(tmp_path_factory: pytest.TempPathFactory) -> Heartbeats:
    """Several `chaperone heartbeat` commands, run together, each on a job of its own."""
    folder = tmp_path_factory.mktemp("heartbeat")
    with supervisor_in(folder) as supervisor:
        ids = {
            name: old_job(supervisor, name, age=30, heartbeat_interval=10)
            for name in ("by-env", "by-option", "env-ignored", "finished")
        }
        finished = supervisor.read(ids["finished"])
        assert finished is not None
        supervisor.write(
            attrs.evolve(finished, state="completed", finished_at=finished.started_at + 1),
            ttl=3600,
        )
    env = clean_environ(folder)
    invocations = {
        "by-env": Invocation(
            ("heartbeat", "--progress", "3/10"),
            folder,
            {**env, "CHAPERONE_SUPERVISION_ID": ids["by-env"]},
        ),
        "by-option": Invocation(
            ("heartbeat", "--id", ids["by-option"], "--progress", "7"),
            folder,
            {**env, "CHAPERONE_SUPERVISION_ID": ids["env-ignored"]},
        ),
        "finished": Invocation(("heartbeat", "--id", ids["finished"]), folder, env),
        "unknown": Invocation(("heartbeat", "--id", str(uuid.uuid4())), folder, env),
        "no-id": Invocation(("heartbeat",), folder, env),
        "bad-progress": Invocation(
            ("heartbeat", "--progress", "three/10"),
            folder,
            {**env, "CHAPERONE_SUPERVISION_ID": ids["by-env"]},
        ),
    }
    results = run_many(invocations, timeout=TIMEOUT)
    with supervisor_in(folder) as supervisor:
        after = {name: supervisor.read(supervision_id) for name, supervision_id in ids.items()}
        due = dict(supervisor.store.due(_keys.DEADLINES, float("inf"), 100))
    return Heartbeats(folder=folder, ids=ids, results=results, after=after, due=due)


class TestHeartbeatCommand:
    """`chaperone heartbeat` records a heartbeat for a job supervised elsewhere."""

    def test_the_id_comes_from_the_environment(self, heartbeats: Heartbeats) -> None:
        """With no --id, CHAPERONE_SUPERVISION_ID names the job; its heartbeat and
        progress are recorded and its stuck check moves to the new deadline."""
        result = heartbeats.results["by-env"]
        assert result.returncode == 0, str(result)
        record = heartbeats.after["by-env"]
        assert record is not None
        assert record.last_heartbeat is not None
        assert abs(record.last_heartbeat - time.time()) < 60
        assert (record.progress_current, record.progress_total) == (3, 10)
        member = _keys.member(heartbeats.ids["by-env"], "stuck")
        assert heartbeats.due[member] == record.last_heartbeat + 10 * 3 + flush_interval(10)

    def test_the_option_wins_over_the_environment(self, heartbeats: Heartbeats) -> None:
        """--id names the job even with CHAPERONE_SUPERVISION_ID set; progress without
        a total is recorded so."""
        assert heartbeats.results["by-option"].returncode == 0
        record = heartbeats.after["by-option"]
        assert record is not None
        assert (record.progress_current, record.progress_total) == (7, None)
        untouched = heartbeats.after["env-ignored"]
        assert untouched is not None
        assert untouched.last_heartbeat is None

    def test_a_finished_job_is_left_alone(self, heartbeats: Heartbeats) -> None:
        """A heartbeat for a job that already finished changes nothing."""
        assert heartbeats.results["finished"].returncode == 0
        record = heartbeats.after["finished"]
        assert record is not None
        assert record.state == "completed"
        assert record.last_heartbeat is None

    def test_an_unknown_job_exits_1(self, heartbeats: Heartbeats) -> None:
        """A heartbeat for an id no job has exits 1 saying so."""
        result = heartbeats.results["unknown"]
        assert result.returncode == 1, str(result)
        assert "no supervised job with id" in result.stderr

    @pytest.mark.parametrize(
        ("name", "message"), [("no-id", "no job id"), ("bad-progress", "CURRENT/TOTAL")]
    )
    def test_usage_errors_exit_2(self, heartbeats: Heartbeats, name: str, message: str) -> None:
        """No id at all, or a progress that is not CURRENT[/TOTAL], exits 2 saying why."""
        result = heartbeats.results[name]
        assert result.returncode == 2, str(result)
        assert message in result.stderr


# -- chaperone monitor --------------------------------------------------------------------

JOB_PROCESS = """
import sys
from chaperone.supervision import supervise
with supervise("remote.job", heartbeat_interval=0.5, missed_heartbeats=2) as job:
    job.heartbeat()
    print(job.supervision_id, flush=True)
    sys.stdin.readline()  # hangs here, heartbeating no more, until told to go on
print("finished", flush=True)
"""


class TestMonitorOnce:
    """`chaperone monitor --once` watches jobs supervised by other processes."""

    def test_finds_a_job_that_stopped_heartbeating_and_its_end(self, tmp_path: Path) -> None:
        """A job process supervised with `supervise(...)` heartbeats, then hangs: one
        `monitor --once` in another process, after the deadline, delivers job_stuck;
        when the job then ends, the next one delivers the resolved alert."""
        env = clean_environ(tmp_path)
        job = subprocess.Popen(
            [sys.executable, "-c", JOB_PROCESS],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert job.stdout is not None
            assert job.stdin is not None
            supervision_id = job.stdout.readline().strip()
            assert uuid.UUID(supervision_id).version == 4, job.stderr.read() if job.stderr else ""
            deadline = time.monotonic() + TIMEOUT  # the job's writer thread records it soon
            record = None
            while record is None and time.monotonic() < deadline:
                with supervisor_in(tmp_path) as supervisor:
                    record = supervisor.read(supervision_id)
                time.sleep(0.05)
            assert record is not None
            assert record.stuck_deadline is not None
            time.sleep(max(0.0, record.stuck_deadline - time.time()) + 0.1)
            found = run_cli("monitor", "--once", cwd=tmp_path, env=env, timeout=TIMEOUT)
            job.stdin.write("go on\n")
            job.stdin.flush()
            ended, errors = job.communicate(timeout=TIMEOUT)
        finally:
            if job.poll() is None:
                job.kill()
                job.communicate()
        assert found.returncode == 0, str(found)
        assert found.stdout.strip().endswith("1 event(s), 1 alert(s)"), str(found)
        stuck = firing(stored_history(tmp_path), "job_stuck")
        assert [r["key"] for r in stuck] == [supervision_id]
        assert job.returncode == 0, errors
        assert ended.strip().endswith("finished")
        closing = run_cli("monitor", "--once", cwd=tmp_path, env=env, timeout=TIMEOUT)
        assert closing.returncode == 0, str(closing)
        history = stored_history(tmp_path)
        assert [r["key"] for r in resolved(history, "job_stuck")] == [supervision_id]
        assert len(firing(history, "job_stuck")) == 1


class TestMonitorLoop:
    """`chaperone monitor` runs until SIGTERM or SIGINT, then stops cleanly."""

    @pytest.mark.parametrize("sent", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
    def test_stops_cleanly_on_a_signal(self, tmp_path: Path, sent: signal.Signals) -> None:
        """Once it has delivered an alert for a long-stuck job, a signal makes it stop
        at once, exit 0, and say how many ticks it ran."""
        with supervisor_in(tmp_path) as supervisor:
            supervision_id = old_job(supervisor, "long.stuck", age=600, heartbeat_interval=1)
        env = clean_environ(tmp_path)
        args = ("monitor", "--interval", "0.2")
        process = start_cli(args, cwd=tmp_path, env=env)
        deadline = time.monotonic() + 20
        while not firing(stored_history(tmp_path), "job_stuck"):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"the monitor delivered nothing:\n{finish_cli(process, args)}")
            time.sleep(0.05)
        process.send_signal(sent)
        signalled = time.monotonic()
        result = finish_cli(process, args, TIMEOUT)
        assert time.monotonic() - signalled < 5
        assert result.returncode == 0, str(result)
        assert "monitor stopped after" in result.stdout
        assert [r["key"] for r in firing(stored_history(tmp_path), "job_stuck")] == [supervision_id]


# -- chaperone jobs -----------------------------------------------------------------------


@attrs.frozen
class Listing:
    """The jobs in a store, and what `chaperone jobs` printed about them."""

    ids: dict[str, str]
    results: dict[str, CliResult]


@pytest.fixture(scope="module")
def listing(tmp_path_factory: pytest.TempPathFactory) -> Listing:
    """A store with a job in each state (stuck and timed out as a monitor found them),
    listed in every form at once."""
    folder = tmp_path_factory.mktemp("jobs")
    with supervisor_in(folder) as supervisor:
        ids = {
            "stuck": old_job(supervisor, "job.stuck", age=100, heartbeat_interval=1),
            "timed_out": old_job(supervisor, "job.timed_out", age=100, timeout=10),
            "running": old_job(
                supervisor, "job.running", age=1, heartbeat_interval=3600, timeout=3600
            ),
        }
        with supervise("job.completed", supervisor=supervisor) as done:
            done.progress(5, 5)
        ids["completed"] = done.supervision_id
        with pytest.raises(RuntimeError), supervise("job.failed", supervisor=supervisor) as bad:
            raise RuntimeError("exploded")
        ids["failed"] = bad.supervision_id
    env = clean_environ(folder)
    marked = run_cli("monitor", "--once", cwd=folder, env=env, timeout=TIMEOUT)
    assert marked.returncode == 0, str(marked)
    invocations = {
        state: Invocation(("jobs", "--json", "--state", state), folder, env) for state in ids
    }
    invocations["all"] = Invocation(("jobs", "--json"), folder, env)
    invocations["table"] = Invocation(("jobs",), folder, env)
    invocations["bad-state"] = Invocation(("jobs", "--state", "sleeping"), folder, env)
    return Listing(ids=ids, results=run_many(invocations, timeout=TIMEOUT))


class TestJobsCommand:
    """`chaperone jobs` lists supervised jobs with their state."""

    @pytest.mark.parametrize("state", ["running", "stuck", "timed_out", "completed", "failed"])
    def test_state_filter(self, listing: Listing, state: str) -> None:
        """--json --state STATE lists exactly the job in that state, with at least its
        id, name and state."""
        result = listing.results[state]
        assert result.returncode == 0, str(result)
        rows = result.json()
        assert [row["supervision_id"] for row in rows] == [listing.ids[state]]
        (row,) = rows
        assert row["name"] == f"job.{state}"
        assert row["state"] == state

    def test_all_jobs_newest_first(self, listing: Listing) -> None:
        """--json alone lists every job, newest first, with their details."""
        result = listing.results["all"]
        assert result.returncode == 0, str(result)
        rows = result.json()
        assert sorted(row["supervision_id"] for row in rows) == sorted(listing.ids.values())
        started = [row["started_at"] for row in rows]
        assert started == sorted(started, reverse=True)
        by_state = {row["state"]: row for row in rows}
        assert by_state["completed"]["progress"] == {"current": 5, "total": 5}
        assert by_state["failed"]["error"] == "RuntimeError: exploded"
        assert by_state["running"]["heartbeat_interval"] == 3600
        assert json.dumps(rows)  # plain JSON all the way down

    def test_table(self, listing: Listing) -> None:
        """Without --json, a table names every job and its state."""
        result = listing.results["table"]
        assert result.returncode == 0, str(result)
        assert "Supervised jobs" in result.stdout
        for state, supervision_id in listing.ids.items():
            assert supervision_id in result.stdout
            assert state in result.stdout

    def test_an_unknown_state_is_a_usage_error(self, listing: Listing) -> None:
        """--state with a state that does not exist exits 2 naming the choices."""
        result = listing.results["bad-state"]
        assert result.returncode == 2, str(result)
        assert "timed_out" in result.stderr
