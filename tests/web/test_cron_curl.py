"""The cron line of docs/web.md, exactly as documented, run by ``sh`` with the real
``curl`` against a real ``chaperone serve``: a job that succeeds and one that fails end
as the records ``chaperone jobs --json`` shows, the failure's error the tail of its
output; and ``--retry 3`` carries a check-in over the 503 of a store that is away.
"""

from __future__ import annotations

import os
import re
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import attrs
import pytest

from helpers.checkin_serve import BACKUP_KEY, CheckinServer, checkin_server
from helpers.cli import stored_jobs
from helpers.doc_examples import DOCS, blocks

PAGE = DOCS / "web.md"
JOB_IN_DOCS = "/usr/local/bin/backup"
"""The job the documented line runs; the tests put a script of theirs in its place."""
CURL = "/usr/bin/curl"
RUN_TIMEOUT = 60.0
_SCHEDULE = re.compile(r"^(?:\S+\s+){5}(?P<command>\S.*)$")
_ASSIGNMENT = re.compile(r"^(?P<name>[A-Z_][A-Z0-9_]*)=(?P<value>.*)$")


@attrs.frozen
class Crontab:
    """The documented crontab: its variables and its one command (schedule removed)."""

    variables: dict[str, str]
    command: str


def documented_crontab() -> Crontab:
    """The ``crontab`` block of docs/web.md, read as cron reads it."""
    [block] = [b for b in blocks(PAGE.read_text(encoding="utf-8")) if b.title == "crontab"]
    variables: dict[str, str] = {}
    commands: list[str] = []
    for line in block.text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        assignment = _ASSIGNMENT.match(line)
        if assignment:
            variables[assignment.group("name")] = assignment.group("value")
            continue
        scheduled = _SCHEDULE.match(line)
        assert scheduled, f"not a crontab line: {line!r}"
        commands.append(scheduled.group("command"))
    [command] = commands
    assert "%" not in command, "cron turns % into a newline"
    return Crontab(variables, command)


def job_script(folder: Path, name: str, output: str, status: int) -> Path:
    """A shell script that prints ``output`` and exits ``status``."""
    script = folder / name
    script.write_text(f"#!/bin/sh\ncat <<'EOF'\n{output}\nEOF\nexit {status}\n", encoding="utf-8")
    script.chmod(0o755)
    return script


def documented_line(server: CheckinServer, home: Path, job: Path) -> dict[str, Any]:
    """How to run the documented command with ``sh -c`` as cron would: its variables set
    (the URL and key those of ``server``), HOME a folder of the test's, and ``job`` in
    place of the documented job (keyword arguments for ``subprocess``).
    """
    crontab = documented_crontab()
    assert JOB_IN_DOCS in crontab.command
    assert set(crontab.variables) == {"PING_URL", "PING_KEY"}
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "PING_URL": f"{server.ping}/backup",
        "PING_KEY": BACKUP_KEY,
    }
    argv = ["/bin/sh", "-c", crontab.command.replace(JOB_IN_DOCS, str(job))]
    return {"args": argv, "env": env, "cwd": home, "text": True}


def run_documented_line(
    server: CheckinServer, home: Path, job: Path
) -> subprocess.CompletedProcess[str]:
    """Run the documented line (:func:`documented_line`) to its end."""
    return subprocess.run(
        **documented_line(server, home, job), capture_output=True, timeout=RUN_TIMEOUT, check=False
    )


def backup_jobs(store_folder: Path) -> list[dict[str, Any]]:
    """The records of the job ``backup``, as ``chaperone jobs --json`` lists them."""
    return [job for job in stored_jobs(store_folder) if job["name"] == "backup"]


@pytest.fixture(autouse=True)
def real_curl() -> None:
    """The tests need the real curl binary (the issue asks for it): fail without it."""
    if not Path(CURL).exists():
        pytest.fail(f"{CURL} is missing: install curl (apt-get install curl)")
    assert shutil.which("curl", path="/usr/bin:/bin") == CURL


class TestDocumentedCronLine:
    """The line works as the page says, for a job that succeeds and one that fails."""

    def test_the_page_has_one_crontab_line(self) -> None:
        """The page's crontab block is variables and one scheduled line using curl with
        ``-fsS -m 10 --retry 3`` for each check-in.
        """
        crontab = documented_crontab()
        assert crontab.command.count("curl -fsS -m 10 --retry 3") == 3

    def test_a_job_that_succeeds(self, tmp_path: Path) -> None:
        """The job runs; one run of backup is recorded, completed, with the documented
        timeout; the line prints nothing (cron mails nothing) and exits 0.
        """
        job = job_script(tmp_path, "backup-ok", "dumped 42 tables", 0)
        with checkin_server(tmp_path) as server:
            done = run_documented_line(server, tmp_path, job)
        assert done.returncode == 0, done.stderr
        assert (done.stdout, done.stderr) == ("", "")
        [record] = backup_jobs(tmp_path)
        assert record["state"] == "completed"
        assert record["timeout"] == 7200.0
        assert record["error"] is None
        assert (tmp_path / "backup.log").read_text(encoding="utf-8") == "dumped 42 tables\n"

    def test_a_job_that_fails(self, tmp_path: Path) -> None:
        """The job fails after much output: one run, failed, its error the tail of the
        output (the last line in, the first lines out).
        """
        lines = [f"copying chunk {n:04d}" for n in range(200)]
        job = job_script(tmp_path, "backup-bad", "\n".join([*lines, "error: disk full"]), 3)
        with checkin_server(tmp_path) as server:
            done = run_documented_line(server, tmp_path, job)
        assert done.returncode == 0, done.stderr
        assert done.stdout == ""
        [record] = backup_jobs(tmp_path)
        assert record["state"] == "failed"
        assert record["timeout"] == 7200.0
        assert record["error"].endswith("copying chunk 0199\nerror: disk full")
        assert "copying chunk 0000" not in record["error"]
        assert len(record["error"]) <= 500


def read_until(stream: Any, wanted: str, timeout: float) -> str:
    """What ``stream`` (a process's pipe) gives until ``wanted`` appears in it, waiting
    at most ``timeout`` seconds.
    """
    seen = b""
    deadline = time.monotonic() + timeout
    while wanted.encode() not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            pytest.fail(f"{wanted!r} never came; got:\n{seen.decode(errors='replace')}")
        ready, _, _ = select.select([stream], [], [], left)
        if ready:
            chunk = os.read(stream.fileno(), 65536)
            if not chunk:
                pytest.fail(f"the stream ended before {wanted!r}:\n{seen.decode()}")
            seen += chunk
    return seen.decode(errors="replace")


class TestRetry:
    """``--retry 3`` carries a check-in over a moment the store is away."""

    def test_a_503_is_sent_again(self, tmp_path: Path) -> None:
        """The store's folder is a file at first (serve answers 503 to the start); once
        serve has refused it, the folder is made: curl's retry lands, and the run ends
        completed as usual.
        """
        store_folder = tmp_path / "store"
        store_folder.write_text("not a folder yet", encoding="utf-8")
        job = job_script(tmp_path, "backup-ok", "dumped 42 tables", 0)
        with checkin_server(tmp_path, store_folder) as server:
            line = subprocess.Popen(
                **documented_line(server, tmp_path, job),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            try:
                assert server.served.process.stderr is not None
                log = read_until(server.served.process.stderr, "check-in not recorded", 20)
                store_folder.unlink()
                store_folder.mkdir()
                _, err = line.communicate(timeout=RUN_TIMEOUT)
            finally:
                if line.poll() is None:
                    line.kill()
                    line.communicate()
        assert "Traceback" not in log
        assert line.returncode == 0, err
        assert "503" in err  # curl says what it retried
        [record] = backup_jobs(store_folder)
        assert record["state"] == "completed"
        assert record["timeout"] == 7200.0
