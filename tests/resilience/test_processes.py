"""Processes stay in hand: ``chaperone run`` forwards SIGHUP, SIGQUIT, SIGUSR1 and
SIGUSR2 to its job and keeps supervising; a job whose supervisor dies ends abandoned;
the whole process group is killed at the end of the grace period; commands that cannot
run exit 126 and 127; ``chaperone heartbeat`` never fails a script because of the store.
Real ``chaperone`` processes, real signals, a SQLite file per run.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from chaperone import SystemClock
from chaperone.store import SQLiteStore
from chaperone.supervision import JobRecord, Supervisor
from helpers.cli import (
    CHAPERONE,
    STORE_FILE,
    clean_environ,
    finish_cli,
    run_cli,
    start_cli,
    stored_history,
    stored_jobs,
)

RUN_TIMEOUT = 60.0


def wait_for(condition: object, timeout: float = 30.0) -> bool:
    """Poll ``condition()`` (a callable) until true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def group_alive(pgid: int) -> bool:
    """Whether any process of group ``pgid`` is left, zombies (dead, waiting for a
    parent to reap them) not counted."""
    for process in psutil.process_iter(["pid", "status"]):
        try:
            if os.getpgid(process.pid) == pgid and process.status() != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, psutil.Error):
            continue
    return False


TRAPPER = """
for sig in HUP QUIT USR1 USR2; do trap "echo $sig >> signals" $sig; done
touch started
while [ ! -e done ]; do sleep 0.05; done
"""


class TestSignals:
    """Signals a terminal or a process manager sends reach the job, not chaperone."""

    def test_hup_quit_usr1_usr2_are_forwarded(self, tmp_path: Path) -> None:
        """Each signal reaches the job's trap; chaperone goes on supervising, and exits
        with the job's status once it ends; the job's record is completed."""
        env = clean_environ(tmp_path)
        process = start_cli(
            ["run", "--name", "trapper", "--", "sh", "-c", TRAPPER], cwd=tmp_path, env=env
        )
        try:
            assert wait_for((tmp_path / "started").exists), "the job never started"
            for signum in (signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
                process.send_signal(signum)
                name = signum.name.removeprefix("SIG")
                assert wait_for(
                    lambda name=name: name in _read(tmp_path / "signals"), timeout=10
                ), f"{name} never reached the job"
                assert process.poll() is None, "chaperone died of a forwarded signal"
            (tmp_path / "done").touch()
        finally:
            result = finish_cli(process, ["run"], RUN_TIMEOUT)
        assert result.returncode == 0, str(result)
        assert _read(tmp_path / "signals").split() == ["HUP", "QUIT", "USR1", "USR2"]
        [job] = stored_jobs(tmp_path)
        assert job["state"] == "completed"


class TestGroupKilled:
    """A limit stops everything the job started."""

    def test_sigkill_reaches_the_group_after_the_shell_left(self, tmp_path: Path) -> None:
        """``sh`` exits at SIGTERM, its ``sleep 33`` ignores SIGTERM: at the end of the
        grace period the group gets SIGKILL all the same, and nothing of it is left."""
        script = 'sleep 31 & (trap "" TERM; sleep 33) & wait'
        result = run_cli(
            "run",
            "--timeout",
            "1",
            "--kill-on-timeout",
            "--",
            "sh",
            "-c",
            script,
            cwd=tmp_path,
            env=clean_environ(tmp_path),
            timeout=RUN_TIMEOUT,
        )
        assert result.returncode == 143, str(result)
        [job] = stored_jobs(tmp_path)
        pgid = job["pid"]
        assert isinstance(pgid, int)
        assert not group_alive(pgid), "a process of the job's group outlived the kill"


class TestCannotRun:
    """The shell's exit statuses for commands that do not start."""

    @pytest.mark.parametrize(
        ("make", "status"),
        [
            ("directory", 126),
            ("not-executable", 126),
            ("missing", 127),
        ],
    )
    def test_exit_status(self, tmp_path: Path, make: str, status: int) -> None:
        """A directory or a file without the execute bit exits 126, a missing command
        127, with one line naming it."""
        target = tmp_path / "target"
        if make == "directory":
            target.mkdir()
        elif make == "not-executable":
            target.write_text("#!/bin/sh\necho hi\n")
            target.chmod(0o644)
        result = run_cli("run", "--", str(target), cwd=tmp_path, env=clean_environ(tmp_path))
        assert result.returncode == status, str(result)
        assert f"cannot start {str(target)!r}" in result.stderr


class TestAbandoned:
    """A job whose chaperone run was killed does not stay "running"."""

    def test_a_killed_supervisor_leaves_an_abandoned_job(self, tmp_path: Path) -> None:
        """``chaperone run`` killed with SIGKILL: once its vouch (1 s here) lapses, the
        next monitor tick marks the job abandoned and alerts job_abandoned once."""
        env = clean_environ(tmp_path, CHAPERONE_ABANDONED_AFTER="1")
        process = subprocess.Popen(
            [str(CHAPERONE), "run", "--name", "orphan", "--", "sleep", "60"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            assert wait_for(lambda: bool(stored_jobs(tmp_path))), "the job was never recorded"
            [job] = stored_jobs(tmp_path)
            process.kill()
            process.wait(10)
            time.sleep(1.5)  # the vouch's lease (1 s) runs out: real time, a real process
            first = run_cli("monitor", "--once", cwd=tmp_path, env=env)
            again = run_cli("monitor", "--once", cwd=tmp_path, env=env)
        finally:
            process.kill()
            pid = stored_jobs(tmp_path)[0]["pid"] if stored_jobs(tmp_path) else None
            if isinstance(pid, int) and group_alive(pid):
                os.killpg(pid, signal.SIGKILL)
        assert "1 alert(s)" in first.stdout, str(first)
        assert "0 alert(s)" in again.stdout, str(again)
        [after] = stored_jobs(tmp_path)
        assert after["supervision_id"] == job["supervision_id"]
        assert after["state"] == "abandoned"
        assert "stopped vouching" in str(after["error"])
        fired = [
            r
            for r in stored_history(tmp_path)
            if r["type"] == "job_abandoned" and r["channel"] == "database"
        ]
        assert len(fired) == 1


class TestHeartbeatCommand:
    """`chaperone heartbeat` never fails the script it is in because of the store."""

    def test_an_unreachable_store_is_a_warning_exit_0(self, tmp_path: Path) -> None:
        """Redis refusing: exit 0 and one warning line, within a few seconds."""
        env = clean_environ(
            tmp_path,
            CHAPERONE_STORE="redis://127.0.0.1:1/0?retries=0&connect_timeout=0.5",
        )
        started = time.monotonic()
        result = run_cli("heartbeat", "--id", "some-job", cwd=tmp_path, env=env)
        assert result.returncode == 0, str(result)
        assert "heartbeat not recorded" in result.stderr
        assert time.monotonic() - started < 15

    def test_a_locked_store_delays_it_a_second_at_most(self, tmp_path: Path) -> None:
        """Another process holds the SQLite store's write lock: the heartbeat gives up
        after a second (not SQLite's usual ten), exit 0 with a warning."""
        env = clean_environ(tmp_path)
        path = tmp_path / STORE_FILE
        store = SQLiteStore(path, SystemClock(), f"sqlite:///{path}")
        supervisor = Supervisor(store, background=False)
        record = JobRecord(supervision_id="job-1", name="j", started_at=time.time())
        assert supervisor.write(record)
        store.close()
        holder = sqlite3.connect(path, isolation_level=None, timeout=0)
        holder.execute("BEGIN IMMEDIATE")
        try:
            started = time.monotonic()
            result = run_cli("heartbeat", "--id", "job-1", cwd=tmp_path, env=env)
            took = time.monotonic() - started
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert result.returncode == 0, str(result)
        assert "heartbeat not recorded" in result.stderr
        assert took < 8, took  # start-up and one second of waiting, not ten

    def test_under_chaperone_run_the_file_carries_it(self, tmp_path: Path) -> None:
        """With the run's heartbeat file, the command writes it and never opens the
        store (here a file that is not a database): exit 0, no warning."""
        corrupt = tmp_path / "corrupt.db"
        corrupt.write_bytes(b"not a database at all" * 100)
        beat = tmp_path / "heartbeat"
        env = clean_environ(
            tmp_path,
            CHAPERONE_STORE=f"sqlite:///{corrupt}",
            CHAPERONE_SUPERVISION_ID="job-1",
            CHAPERONE_HEARTBEAT_FILE=str(beat),
        )
        result = run_cli("heartbeat", "--progress", "3/10", cwd=tmp_path, env=env)
        assert result.returncode == 0, str(result)
        assert "warning" not in result.stderr
        assert '"progress": [3, 10]' in beat.read_text()


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""
