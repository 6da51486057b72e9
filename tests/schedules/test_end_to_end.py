"""Schedules end to end, with real processes: a ``chaperone.toml`` schedule watched by a
running ``chaperone monitor`` raises ``job_missed`` on a loopback webhook, a
``chaperone run`` of the job resolves it, and ``chaperone run --schedule`` of a failing
command raises ``job_failed`` with its exit status.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from helpers.alert_webhook import AlertWebhook, Seen
from helpers.cli import CHAPERONE, clean_environ, require_fixture_plugins, run_cli

JOB = "reports.every-two-seconds"
CONFIG = f"""\
[[schedules]]
job = "{JOB}"
every = "2s"
grace = "1s"
"""


def alerting_env(folder: Path, webhook: AlertWebhook) -> dict[str, str]:
    """A clean environment for ``folder`` delivering to the log, the database and
    ``webhook``, without grouping."""
    return clean_environ(
        folder,
        CHAPERONE_ALERT_CHANNELS="log,database,webhook",
        CHAPERONE_WEBHOOK_URL=webhook.url,
        CHAPERONE_ALERT_GROUPING="false",
    )


@attrs.frozen
class Watching:
    """A folder with its configuration, a webhook, and the monitor's start."""

    folder: Path
    env: dict[str, str]
    webhook: AlertWebhook
    started: float


@pytest.fixture
def watching(tmp_path: Path) -> Iterator[Watching]:
    """A running ``chaperone monitor`` (every 0.2 s) over CONFIG, delivering to the log,
    the database and a loopback webhook."""
    require_fixture_plugins()
    (tmp_path / "chaperone.toml").write_text(CONFIG, encoding="utf-8")
    with AlertWebhook() as webhook:
        env = alerting_env(tmp_path, webhook)
        started = time.monotonic()
        monitor = subprocess.Popen(
            [str(CHAPERONE), "monitor", "--interval", "0.2"],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            yield Watching(tmp_path, env, webhook, started)
        finally:
            monitor.send_signal(signal.SIGTERM)
            try:
                monitor.wait(20)
            except subprocess.TimeoutExpired:
                monitor.kill()
                monitor.wait()


def has(alert_type: str, key: str, status: str) -> object:
    """A webhook condition: an alert of that type, key and status arrived."""

    def condition(seen: list[Seen]) -> bool:
        return any(each.incident == (alert_type, key, status) for each in seen)

    return condition


class TestMissedRunEndToEnd:
    def test_missed_within_five_seconds_then_resolved_by_a_run(self, watching: Watching) -> None:
        """With nothing running the job, job_missed reaches the webhook within 5 s of the
        monitor's start, saying one run was missed; `chaperone run --name JOB -- true`
        resolves it, and the incident fired once."""
        assert watching.webhook.wait_for(has("job_missed", JOB, "firing"), timeout=5.0)
        arrived = time.monotonic() - watching.started
        [missed] = [s for s in watching.webhook.seen if s.incident[0] == "job_missed"]
        assert missed.title == f"Job Missed: {JOB}"
        assert missed.fields["Last Run"] == "never"
        assert missed.fields["Schedule"] == "every 2 seconds"
        ran = run_cli("run", "--name", JOB, "--", "true", cwd=watching.folder, env=watching.env)
        assert ran.returncode == 0, str(ran)
        assert watching.webhook.wait_for(has("job_missed", JOB, "resolved"), timeout=15.0)
        incidents = watching.webhook.incidents()
        assert incidents[("job_missed", JOB, "firing")] == 1, incidents
        assert arrived < 5.0


class TestFailedScheduledRun:
    def test_a_failing_scheduled_run_raises_job_failed_with_its_exit_status(
        self, tmp_path: Path
    ) -> None:
        """`chaperone run --schedule` of a command that exits 4 delivers job_failed to the
        webhook, on by default for a scheduled job, with "exit status 4"; the schedule is
        then listed, failed."""
        require_fixture_plugins()
        with AlertWebhook() as webhook:
            env = alerting_env(tmp_path, webhook)
            failed = run_cli(
                "run", "--name", "backup.hourly", "--schedule", "@hourly", "--",
                "sh", "-c", "exit 4",
                cwd=tmp_path, env=env,
            )  # fmt: skip
            assert failed.returncode == 4, str(failed)
            assert webhook.wait_for(has("job_failed", "backup.hourly", "firing"), timeout=10.0)
            [alert] = [s for s in webhook.seen if s.incident[0] == "job_failed"]
        assert alert.fields["Error"] == "exit status 4"
        listed = run_cli("schedules", "--json", cwd=tmp_path, env=env)
        assert listed.returncode == 0, str(listed)
        [entry] = listed.json()
        assert (entry["job"], entry["state"], entry["cron"]) == (
            "backup.hourly",
            "failed",
            "0 * * * *",
        )


class TestOverlappingRuns:
    def test_a_run_started_while_the_last_runs_is_reported_and_resolved(
        self, tmp_path: Path
    ) -> None:
        """With `overlap = "alert"`, `chaperone run` of the job while another run of it is
        under way raises job_overlap naming the run under way; the overlapping run's end
        resolves it. Without it, overlapping runs raise nothing."""
        require_fixture_plugins()
        (tmp_path / "chaperone.toml").write_text(
            '[[schedules]]\njob = "sync"\nevery = "1h"\noverlap = "alert"\n'
            '[[schedules]]\njob = "quiet"\nevery = "1h"\n',
            encoding="utf-8",
        )
        with AlertWebhook() as webhook:
            env = alerting_env(tmp_path, webhook)
            for job in ("sync", "quiet"):
                first = start_run(tmp_path, env, job)
                try:
                    second = run_cli("run", "--name", job, "--", "true", cwd=tmp_path, env=env)
                    assert second.returncode == 0, str(second)
                finally:
                    assert first.wait(30) == 0
            assert webhook.wait_for(has("job_overlap", "sync", "resolved"), timeout=10.0)
            incidents = webhook.incidents()
            [firing] = [s for s in webhook.seen if s.incident == ("job_overlap", "sync", "firing")]
        assert incidents[("job_overlap", "sync", "firing")] == 1
        assert not [key for key in incidents if key[0] == "job_overlap" and key[1] == "quiet"]
        assert firing.fields["Running Supervision ID"] != firing.fields["Supervision ID"]


def start_run(folder: Path, env: dict[str, str], job: str) -> subprocess.Popen[bytes]:
    """Start `chaperone run --name JOB -- sleep 4` and wait until its run is recorded
    running."""
    process = subprocess.Popen(
        [str(CHAPERONE), "run", "--name", job, "--", "sleep", "4"],
        cwd=folder,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        listed = run_cli("schedules", "--json", cwd=folder, env=env)
        runs = {entry["job"]: entry["last_run"] for entry in listed.json()}
        if runs.get(job) and runs[job]["state"] == "running":
            return process
        time.sleep(0.1)
    process.kill()
    raise AssertionError(f"the run of {job} was never recorded running")
