"""``chaperone schedules``, ``pause``/``resume`` and ``chaperone run --schedule``, run as
a person runs them: the real console script on a fresh SQLite file.

The commands read the system clock, so the runs put in the store are placed relative to
it, hours away from any boundary a slow machine could cross.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from chaperone import SystemClock
from chaperone.store import SQLiteStore
from chaperone.supervision import JobRecord, Supervisor
from chaperone.supervision._records import JobState
from helpers.cli import STORE_FILE, clean_environ, run_cli

CONFIG = """
[[schedules]]
job = "reports.nightly"
cron = "0 3 * * *"
timezone = "Europe/Berlin"
grace = "10m"

[[schedules]]
job = "sync"
every = "1h"
grace = "1m"
"""


def past_run(folder: Path, name: str, *, hours_ago: float, state: JobState) -> None:
    """Write a run of ``name`` that started ``hours_ago`` and ended in ``state``."""
    path = folder / STORE_FILE
    store = SQLiteStore(path, SystemClock(), f"sqlite:///{path.resolve()}")
    try:
        started = time.time() - hours_ago * 3600
        record = JobRecord(
            supervision_id=str(uuid.uuid4()),
            name=name,
            started_at=started,
            state=state,
            finished_at=started + 1,
        )
        Supervisor(store, background=False).write(record)
    finally:
        store.close()


def listed(folder: Path) -> dict[str, dict[str, object]]:
    """``chaperone schedules --json``, by job."""
    result = run_cli("schedules", "--json", cwd=folder, env=clean_environ(folder))
    assert result.returncode == 0, result
    return {row["job"]: row for row in result.json()}


class TestListing:
    def test_lists_configured_schedules_with_their_state(self, tmp_path: Path) -> None:
        """The table and the JSON show each schedule's timezone, last run and state: a
        job three periods and a grace silent is missed, three times.
        """
        (tmp_path / "chaperone.toml").write_text(CONFIG, encoding="utf-8")
        past_run(tmp_path, "sync", hours_ago=3.1, state=JobState.COMPLETED)
        env = clean_environ(tmp_path)
        assert listed(tmp_path)["sync"]["state"] == "missed"
        paused = run_cli("schedules", "pause", "sync", cwd=tmp_path, env=env)
        assert paused.returncode == 0, paused
        assert listed(tmp_path)["sync"]["state"] == "paused"
        resumed = run_cli("schedules", "resume", "sync", cwd=tmp_path, env=env)
        assert resumed.returncode == 0, resumed
        after = listed(tmp_path)["sync"]
        assert after["state"] == "up"
        assert datetime.fromisoformat(after["expected_at"]) > datetime.now(UTC)

    def test_unknown_job_and_resume_without_pause_fail(self, tmp_path: Path) -> None:
        """Pausing a job without a schedule, or resuming one not paused, exits 1 saying so."""
        (tmp_path / "chaperone.toml").write_text(CONFIG, encoding="utf-8")
        env = clean_environ(tmp_path)
        unknown = run_cli("schedules", "pause", "nope", cwd=tmp_path, env=env)
        assert unknown.returncode == 1
        assert "no schedule for job 'nope'" in unknown.stderr
        not_paused = run_cli("schedules", "resume", "sync", cwd=tmp_path, env=env)
        assert not_paused.returncode == 1
        assert "not paused" in not_paused.stderr


class TestRunDeclares:
    def test_run_with_a_schedule_registers_it(self, tmp_path: Path) -> None:
        """``chaperone run --schedule`` registers the schedule; listed with its run, up."""
        env = clean_environ(tmp_path)
        result = run_cli(
            "run",
            "--name",
            "backup",
            "--schedule",
            "every 2h",
            "--grace",
            "10m",
            "--",
            "true",
            cwd=tmp_path,
            env=env,
        )
        assert result.returncode == 0, result
        row = listed(tmp_path)["backup"]
        assert (row["schedule"], row["grace"], row["state"]) == ("every 2 hours", 600.0, "up")
        assert isinstance(row["last_run"], dict)
        assert row["last_run"]["state"] == "completed"

    def test_configuration_wins_over_run(self, tmp_path: Path) -> None:
        """A job the config file schedules keeps the config's schedule."""
        (tmp_path / "chaperone.toml").write_text(CONFIG, encoding="utf-8")
        env = clean_environ(tmp_path)
        result = run_cli(
            "run", "--name", "sync", "--schedule", "@daily", "--", "true", cwd=tmp_path, env=env
        )
        assert result.returncode == 0, result
        assert listed(tmp_path)["sync"]["schedule"] == "every 1 hour"

    def test_bad_schedule_option_is_a_usage_error(self, tmp_path: Path) -> None:
        """A wrong --schedule or --timezone exits 2 naming the option, running nothing."""
        env = clean_environ(tmp_path)
        marker = tmp_path / "ran"
        for options in (["--schedule", "0 3 * *"], ["--schedule", "@daily", "--timezone", "X/Y"]):
            result = run_cli("run", *options, "--", "touch", str(marker), cwd=tmp_path, env=env)
            assert result.returncode == 2, result
            assert options[-2] in result.stderr
        assert not marker.exists()
        assert json.loads(run_cli("schedules", "--json", cwd=tmp_path, env=env).stdout) == []
