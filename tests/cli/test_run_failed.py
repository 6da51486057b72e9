"""``chaperone run --alert-on-failure``: the real console script and real children; a
failing command raises ``job_failed`` with its exit status, and the next success of the
same name resolves it, as ``chaperone history --json`` shows.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

_TESTS = str(Path(__file__).resolve().parent.parent)
if _TESTS not in sys.path:  # until pytest's configuration says pythonpath = ["tests"]
    sys.path.insert(0, _TESTS)

from helpers.cli import clean_environ, run_cli  # noqa: E402

JOB = "backup.nightly"


def failed_alerts(folder: Path) -> list[dict[str, Any]]:
    """The job_failed alerts the database channel recorded, per `chaperone history
    --json`, oldest first."""
    history = run_cli("history", "--json", cwd=folder, env=clean_environ(folder))
    assert history.returncode == 0, str(history)
    records = reversed(history.json())
    return [r for r in records if r["type"] == "job_failed" and r["channel"] == "database"]


class TestAlertOnFailure:
    """A failed `chaperone run` raises job_failed; the next success resolves it."""

    def test_exit_3_raises_and_the_next_success_resolves(self, tmp_path: Path) -> None:
        """`run --alert-on-failure -- sh -c 'exit 3'` delivers job_failed with "exit
        status 3" keyed by the job's name, and `run --alert-on-failure -- true` of the
        same name resolves it."""
        env = clean_environ(tmp_path)
        failed = run_cli(
            "run", "--alert-on-failure", "--name", JOB, "--", "sh", "-c", "exit 3",
            cwd=tmp_path, env=env,
        )  # fmt: skip
        assert failed.returncode == 3, str(failed)
        [alert] = failed_alerts(tmp_path)
        assert (alert["alert_status"], alert["key"]) == ("firing", JOB)
        assert alert["title"] == f"Job Failed: {JOB}"
        assert alert["fields"]["Error"] == "exit status 3"
        assert "[FIRING] Job Failed" in failed.stderr

        succeeded = run_cli(
            "run", "--alert-on-failure", "--name", JOB, "--", "true", cwd=tmp_path, env=env
        )
        assert succeeded.returncode == 0, str(succeeded)
        statuses = [(a["alert_status"], a["key"]) for a in failed_alerts(tmp_path)]
        assert statuses == [("firing", JOB), ("resolved", JOB)]

    def test_without_the_option_a_failure_raises_nothing(self, tmp_path: Path) -> None:
        """A failing `chaperone run` without --alert-on-failure delivers no job_failed."""
        env = clean_environ(tmp_path)
        failed = run_cli("run", "--name", JOB, "--", "sh", "-c", "exit 3", cwd=tmp_path, env=env)
        assert failed.returncode == 3, str(failed)
        assert failed_alerts(tmp_path) == []

    @pytest.mark.parametrize(
        ("command", "error"),
        [
            (("sh", "-c", "kill -TERM $$"), "killed by signal SIGTERM"),
            (("sh", "-c", "exit 1"), "exit status 1"),
        ],
    )
    def test_the_alert_says_how_the_command_failed(
        self, tmp_path: Path, command: tuple[str, ...], error: str
    ) -> None:
        """The alert's error is the exit status, or the signal that killed the command."""
        env = clean_environ(tmp_path)
        failed = run_cli("run", "--alert-on-failure", "--", *command, cwd=tmp_path, env=env)
        assert failed.returncode != 0, str(failed)
        [alert] = failed_alerts(tmp_path)
        assert alert["fields"]["Error"] == error


class TestScheduledJobs:
    """A scheduled job's failed run raises job_failed unless told not to."""

    def test_on_by_default_with_schedule_off_when_told(self, tmp_path: Path) -> None:
        """`run --schedule` of a failing command delivers job_failed without
        --alert-on-failure; with --no-alert-on-failure it does not."""
        env = clean_environ(tmp_path)
        quiet = run_cli(
            "run", "--schedule", "@daily", "--no-alert-on-failure", "--name", "quiet",
            "--", "sh", "-c", "exit 2", cwd=tmp_path, env=env,
        )  # fmt: skip
        assert quiet.returncode == 2, str(quiet)
        failed = run_cli(
            "run", "--schedule", "@daily", "--name", JOB, "--", "sh", "-c", "exit 4",
            cwd=tmp_path, env=env,
        )  # fmt: skip
        assert failed.returncode == 4, str(failed)
        alerts = failed_alerts(tmp_path)
        assert [(a["key"], a["fields"]["Error"]) for a in alerts] == [(JOB, "exit status 4")]

    def test_a_config_schedule_turns_it_on(self, tmp_path: Path) -> None:
        """A [[schedules]] entry for the job's name makes its failures alert, without any
        option on the command line."""
        (tmp_path / "chaperone.toml").write_text(
            f'[[schedules]]\njob = "{JOB}"\nevery = "1h"\n', encoding="utf-8"
        )
        env = clean_environ(tmp_path)
        failed = run_cli("run", "--name", JOB, "--", "sh", "-c", "exit 5", cwd=tmp_path, env=env)
        assert failed.returncode == 5, str(failed)
        [alert] = failed_alerts(tmp_path)
        assert alert["fields"]["Error"] == "exit status 5"
