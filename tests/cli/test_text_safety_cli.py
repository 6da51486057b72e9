"""Hostile text through the real ``chaperone`` CLI: a job name that is not UTF-8, escape
sequences and rich markup in a name, a name of 100,000 characters, and errors of a
megabyte, each in real processes on a fresh SQLite file (and a loopback webhook).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

_TESTS = str(Path(__file__).resolve().parent.parent)
if _TESTS not in sys.path:  # until pytest's configuration says pythonpath = ["tests"]
    sys.path.insert(0, _TESTS)

from chaperone._sanitize import LINE_LIMIT  # noqa: E402
from chaperone.testing.servers import RecordingServer, Reply  # noqa: E402
from helpers.cli import (  # noqa: E402
    STORE_FILE,
    CliResult,
    clean_environ,
    run_cli,
    stored_history,
)

NON_UTF8_NAME = "job-\udcff-name"
"""What Python makes of the argument ``$'job-\\xff-name'`` (the byte 0xFF, not UTF-8)."""
SPOOFING_NAME = (
    "evil\n\x1b[2J\x1b]8;;https://evil.example/\x1b\\[FIRING] fake\u202e "
    "[/bold][link=https://evil.example/]x[/link]"
)
"""A name that would clear the screen, start a fake alert line, reverse the text and,
read as rich markup, break or link the history table."""
TIMED_OUT = 128 + 15
"""The exit status of a job stopped by SIGTERM at its timeout."""
MEGABYTE = 1_000_000


def run_timed_out_job(folder: Path, name: str) -> CliResult:
    """``chaperone run --name NAME --timeout 1 --kill-on-timeout -- sleep 3`` with the
    console ``log`` channel (in console format) and the ``database`` history.
    """
    env = clean_environ(
        folder, CHAPERONE_ALERT_CHANNELS="log,database", CHAPERONE_LOG_FORMAT="console"
    )
    return run_cli(
        "run",
        "--name",
        name,
        "--timeout",
        "1",
        "--kill-on-timeout",
        "--",
        "sleep",
        "3",
        cwd=folder,
        env=env,
    )


def alert_lines(stderr: str) -> list[str]:
    """The lines the ``log`` channel wrote (its alerts open with ``[FIRING]``)."""
    return [line for line in stderr.splitlines() if "[FIRING] Job Timeout" in line]


def store_bytes(folder: Path) -> int:
    """The SQLite store's size on disk, its write-ahead log included."""
    return sum(path.stat().st_size for path in folder.glob(f"{STORE_FILE}*"))


@pytest.fixture(scope="module")
def non_utf8_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, CliResult]:
    """The timed-out job named with a byte that is not UTF-8: its folder and its run."""
    folder = tmp_path_factory.mktemp("non-utf8")
    return folder, run_timed_out_job(folder, NON_UTF8_NAME)


@pytest.fixture(scope="module")
def spoofing_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, CliResult]:
    """The timed-out job with the spoofing name: its folder and its run."""
    folder = tmp_path_factory.mktemp("spoofing")
    return folder, run_timed_out_job(folder, SPOOFING_NAME)


class TestNonUtf8Name:
    """A job named with a byte that is not UTF-8 is supervised and alerted like any other."""

    @pytest.fixture
    def run(self, non_utf8_run: tuple[Path, CliResult]) -> tuple[Path, CliResult]:
        return non_utf8_run

    def test_the_job_is_stopped_at_its_timeout(self, run: tuple[Path, CliResult]) -> None:
        """The job is stopped at its limit, and no part of chaperone fails on the name."""
        _folder, result = run
        assert result.returncode == TIMED_OUT, result
        assert "UnicodeEncodeError" not in result.stderr, result
        assert "delivering from memory" not in result.stderr, result

    def test_history_holds_the_alert(self, run: tuple[Path, CliResult]) -> None:
        """Both channels recorded the timeout alert, the byte shown as U+FFFD."""
        folder, _result = run
        history = stored_history(folder)
        delivered = {
            (record["channel"], record["type"], record["status"], record["title"])
            for record in history
        }
        title = "Job Timeout: job-\ufffd-name"
        assert ("database", "job_timeout", "delivered", title) in delivered
        assert ("log", "job_timeout", "delivered", title) in delivered

    def test_log_line_is_one_line(self, run: tuple[Path, CliResult]) -> None:
        """The console line of the alert is one line, its fields on it."""
        _folder, result = run
        (line,) = alert_lines(result.stderr)
        assert "job-\ufffd-name" in line
        assert "Timeout Limit: 1s" in line

    def test_history_and_jobs_commands_show_it(self, run: tuple[Path, CliResult]) -> None:
        """``chaperone history`` and ``chaperone jobs --json`` show the name."""
        folder, _result = run
        env = clean_environ(folder)
        shown = run_cli("history", cwd=folder, env=env)
        assert shown.returncode == 0, shown
        assert "job-\ufffd-name" in shown.stdout
        jobs = run_cli("jobs", "--json", cwd=folder, env=env)
        assert jobs.returncode == 0, jobs
        assert [job["name"] for job in jobs.json()] == ["job-\ufffd-name"]


class TestSpoofingName:
    """A name full of escape sequences, line breaks and markup spoofs nothing."""

    @pytest.fixture
    def run(self, spoofing_run: tuple[Path, CliResult]) -> tuple[Path, CliResult]:
        return spoofing_run

    def test_no_escape_sequence_reaches_the_console(self, run: tuple[Path, CliResult]) -> None:
        """Standard error holds no escape character and no bidi override."""
        _folder, result = run
        assert result.returncode == TIMED_OUT, result
        assert "\x1b" not in result.stderr
        assert "\u202e" not in result.stderr

    def test_the_fake_alert_stays_on_the_real_line(self, run: tuple[Path, CliResult]) -> None:
        """The name's fake ``[FIRING]`` is text inside the real alert line (and inside the
        resolution's), never the start of a line of its own.
        """
        _folder, result = run
        (line,) = alert_lines(result.stderr)
        assert "[FIRING] Job Timeout: evil [FIRING] fake [/bold]" in line
        spoofed = [line for line in result.stderr.splitlines() if "[FIRING] fake" in line]
        assert spoofed  # the alert and its resolution
        assert all("evil [FIRING] fake" in line for line in spoofed)

    def test_history_table_shows_markup_as_text(self, run: tuple[Path, CliResult]) -> None:
        """``chaperone history`` prints the name's rich markup as written (it used to fail
        on ``[/bold]``) and no escape sequence.
        """
        folder, _result = run
        shown = run_cli("history", cwd=folder, env=clean_environ(folder))
        assert shown.returncode == 0, shown
        assert "[/bold]" in shown.stdout
        assert "\x1b" not in shown.stdout


class TestLongName:
    """A name of 100,000 characters (near the longest argument Linux passes) is cut."""

    def test_history_stays_small(self, tmp_path: Path) -> None:
        """The alert's title is cut to a line's cap with a marker; the store and what
        ``chaperone history`` prints stay small.
        """
        result = run_timed_out_job(tmp_path, "N" * 100_000)
        assert result.returncode == TIMED_OUT, result
        titles = {record["title"] for record in stored_history(tmp_path)}
        assert titles
        for title in titles:
            assert len(title) <= LINE_LIMIT
            assert title.endswith("characters cut]")
        env = clean_environ(tmp_path)
        table = run_cli("history", cwd=tmp_path, env=env)
        as_json = run_cli("history", "--json", cwd=tmp_path, env=env)
        assert table.returncode == as_json.returncode == 0
        assert len(table.stdout) < 20_000
        assert len(as_json.stdout) < 20_000


MEGABYTE_ERRORS = textwrap.dedent(
    """
    import sys
    from datetime import timedelta

    import chaperone
    from chaperone import IncidentRef, JobCompleted

    error = "RuntimeError: " + "E" * int(sys.argv[1])
    with chaperone.Chaperone.from_environment() as runtime:
        for number in range(3):
            runtime.dispatch(
                JobCompleted(
                    supervision_id=f"job-{number}",
                    job_class="App\\\\Jobs\\\\ImportFeed",
                    duration=timedelta(seconds=2),
                    failed=True,
                    error=error,
                    resolves=(IncidentRef(type="job_timeout", key=f"job-{number}"),),
                )
            )
    """
)
"""A job process reporting three failures whose error is a megabyte, as a library user
or an integration reports them (``supervise()`` keeps 500 characters of an exception)."""


class TestMegabyteErrors:
    """Errors of a megabyte leave the store, the history and every message small."""

    def test_store_and_history_stay_small(self, tmp_path: Path) -> None:
        """Three alerts with a 1 MB error each, to ``log``, ``database`` and a loopback
        webhook: each webhook body, the store and what ``chaperone history`` prints stay
        far under a megabyte; the history says how much of the error was cut.
        """
        script = tmp_path / "megabyte_errors.py"
        script.write_text(MEGABYTE_ERRORS)
        with RecordingServer(default=Reply(status=200)) as server:
            env = clean_environ(
                tmp_path,
                CHAPERONE_ALERT_CHANNELS="log,database,webhook",
                CHAPERONE_WEBHOOK_URL=server.url_for("/hook"),
            )
            job = subprocess.run(
                [sys.executable, str(script), str(MEGABYTE)],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            bodies = [len(request.body) for request in server.requests]
        assert job.returncode == 0, job.stderr[-2000:]
        assert len(bodies) == 3
        assert max(bodies) < 64_000
        history = stored_history(tmp_path)
        assert len(history) == 9  # three alerts, three channels
        error = history[0]["fields"]["Error"]
        assert error.startswith("RuntimeError: EEEE")
        assert error.endswith("characters cut]")
        assert store_bytes(tmp_path) < 1_000_000
        assert len(job.stderr) < 100_000
        table = run_cli("history", cwd=tmp_path, env=env)
        as_json = run_cli("history", "--json", cwd=tmp_path, env=env)
        assert table.returncode == as_json.returncode == 0
        assert len(table.stdout) < 20_000
        assert len(as_json.stdout) < 100_000
